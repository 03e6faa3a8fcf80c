/* SPDX-License-Identifier: MIT */
/*
 * The sessions chart, drawn by the server as inline SVG: sessions per UTC
 * day stacked by outcome (bars, left axis) and cost per day (a line, right
 * axis). No script: each day's numbers are in its <title>, which browsers
 * show on hover and screen readers read.
 */
#include "web-private.h"
#include "jada/budget.h"
#include "jada/session-store.h"
#include "jada/util.h"

#include <inttypes.h>
#include <string.h>

#define W 720
#define H 260
#define LEFT 36
#define RIGHT 56
#define TOP 14
#define BOTTOM 52
#define MAX_DAYS 90

enum group { G_DONE, G_MAX_TURNS, G_NEEDS_YOU, G_OTHER, G_RUNNING, _G_MAX };

static const struct {
        const char *name, *color;
} groups[_G_MAX] = {
        [G_DONE] = { "done", "#2e7d32" },
        [G_MAX_TURNS] = { "turn limit", "#e0a030" },
        [G_NEEDS_YOU] = { "needs you", "#1565c0" },
        [G_OTHER] = { "other (failed, timeout, limits)", "#c62828" },
        [G_RUNNING] = { "running", "#9aa3b2" },
};

static enum group group_of(const struct session_row *r)
{
        if (!r->outcome)
                return G_RUNNING;
        if (strcmp(r->outcome, "done") == 0)
                return G_DONE;
        if (strcmp(r->outcome, "max_turns") == 0)
                return G_MAX_TURNS;
        if (strcmp(r->outcome, "needs_you") == 0)
                return G_NEEDS_YOU;
        return G_OTHER;
}

/* A round step for an axis up to max, so that ticks read 1, 2, 5, 10... */
static double nice_step(double max, int ticks)
{
        double raw = max / ticks, p = 1;

        while (p * 10 <= raw)
                p *= 10;
        while (p > raw && p > 1e-6)
                p /= 10;
        if (raw <= p)
                return p;
        if (raw <= 2 * p)
                return 2 * p;
        if (raw <= 5 * p)
                return 5 * p;
        return 10 * p;
}

void web_chart_sessions(FILE *f, const struct session_row *rows, size_t n, int64_t now, unsigned days)
{
        unsigned count[MAX_DAYS][_G_MAX] = { { 0 } }, max_count = 1;
        double cost[MAX_DAYS] = { 0 }, max_cost = 0, step_n, step_c;
        int64_t first = budget_day_start(now) - (int64_t)(days - 1) * 86400;
        double plot_w = W - LEFT - RIGHT, plot_h = H - TOP - BOTTOM, bw;

        if (days == 0 || days > MAX_DAYS)
                days = 30;
        for (size_t i = 0; i < n; i++) {
                int64_t d;
                if (rows[i].uncounted || rows[i].started_at < first)
                        continue;
                d = (rows[i].started_at - first) / 86400;
                if (d < 0 || d >= (int64_t)days)
                        continue;
                count[d][group_of(&rows[i])]++;
                cost[d] += rows[i].cost_usd;
        }
        for (unsigned d = 0; d < days; d++) {
                unsigned total = 0;
                for (int g = 0; g < _G_MAX; g++)
                        total += count[d][g];
                if (total > max_count)
                        max_count = total;
                if (cost[d] > max_cost)
                        max_cost = cost[d];
        }
        step_n = nice_step(max_count, 4);
        if (step_n < 1)
                step_n = 1;
        max_count = (unsigned)(step_n * (unsigned)((max_count + step_n - 1) / step_n));
        step_c = max_cost > 0 ? nice_step(max_cost, 4) : 1;
        max_cost = max_cost > 0 ? step_c * (unsigned)((max_cost + step_c - 1e-9) / step_c) : 1;
        bw = plot_w / days;

        fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
                   "aria-label=\"Sessions per day by outcome, and cost per day\" font-family=\"sans-serif\" "
                   "font-size=\"11\">",
                W, H, W, H);
        /* Axes and grid: sessions left, dollars right. */
        for (double v = 0; v <= max_count + 1e-9; v += step_n) {
                double y = TOP + plot_h - plot_h * v / max_count;
                fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ec\"/>", LEFT, W - RIGHT, y, y);
                fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#5b6374\">%.0f</text>", LEFT - 4, y + 4, v);
        }
        for (double v = 0; v <= max_cost + 1e-9; v += step_c) {
                double y = TOP + plot_h - plot_h * v / max_cost;
                fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"#7b1fa2\">$%.*f</text>", W - RIGHT + 4, y + 4,
                        step_c < 1 ? 2 : 0, v);
        }
        for (unsigned d = 0; d < days; d++) {
                double x = LEFT + d * bw, y = TOP + plot_h;
                char day[32];
                format_utc(day, sizeof day, (uint64_t)(first + (int64_t)d * 86400) * USEC_PER_SEC);
                day[10] = '\0';
                fprintf(f, "<g><title>%s:", day);
                for (int g = 0; g < _G_MAX; g++)
                        if (count[d][g])
                                fprintf(f, " %u %s,", count[d][g], groups[g].name);
                fprintf(f, " $%.2f</title>", cost[d]);
                for (int g = 0; g < _G_MAX; g++) {
                        double h = plot_h * count[d][g] / max_count;
                        if (!count[d][g])
                                continue;
                        y -= h;
                        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>", x + 1, y,
                                bw - 2, h, groups[g].color);
                }
                /* A transparent column so the title shows anywhere on the day. */
                fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"transparent\"/></g>", x, TOP,
                        bw, plot_h);
                if (d % 5 == 0 || d == days - 1)
                        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#5b6374\">%s</text>",
                                x + bw / 2, TOP + plot_h + 14, day + 5);
        }
        fputs("<polyline fill=\"none\" stroke=\"#7b1fa2\" stroke-width=\"2\" points=\"", f);
        for (unsigned d = 0; d < days; d++)
                fprintf(f, "%.1f,%.1f ", LEFT + d * bw + bw / 2, TOP + plot_h - plot_h * cost[d] / max_cost);
        fputs("\"/>", f);
        /* The legend, under the axis. */
        {
                double x = LEFT;
                for (int g = 0; g < _G_MAX; g++) {
                        fprintf(f, "<rect x=\"%.0f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                                   "<text x=\"%.0f\" y=\"%d\">%s</text>",
                                x, H - 22, groups[g].color, x + 14, H - 13, groups[g].name);
                        x += 24 + 6.2 * (double)strlen(groups[g].name);
                }
                fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%d\" y2=\"%d\" stroke=\"#7b1fa2\" stroke-width=\"2\"/>"
                           "<text x=\"%.0f\" y=\"%d\">cost per day</text>",
                        x, x + 12, H - 17, H - 17, x + 16, H - 13);
        }
        fputs("</svg>", f);
}
