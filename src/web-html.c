/* SPDX-License-Identifier: MIT */
/* The dashboard's HTML: escaping, the layout every page shares, its CSS. */
#include "web-private.h"
#include "jada/util.h"

#include <inttypes.h>
#include <string.h>

void web_hn(FILE *f, const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                switch (s[i]) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                case '\0': break;
                default: fputc(s[i], f);
                }
        }
}

void web_h(FILE *f, const char *s)
{
        if (s)
                web_hn(f, s, strlen(s));
}

void web_time(FILE *f, int64_t t)
{
        char buf[32];

        if (t <= 0) {
                fputs("—", f);
                return;
        }
        format_utc(buf, sizeof buf, (uint64_t)t * USEC_PER_SEC);
        fprintf(f, "<time datetime=\"%s\">%.10s %.5s</time>", buf, buf, buf + 11);
}

void web_csrf_field(struct web_request *req)
{
        fprintf(req->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", req->web->csrf);
}

void web_action_button(struct web_request *req, int64_t id, const char *action, const char *label, bool danger)
{
        fprintf(req->out, "<form class=\"inline\" method=\"post\" action=\"/tasks/%" PRId64 "/%s\">", id, action);
        web_csrf_field(req);
        fprintf(req->out, "<button type=\"submit\"%s>%s</button></form>", danger ? " class=\"danger\"" : "", label);
}

void web_page_begin(struct web_request *req, const char *title, const char *active)
{
        static const struct {
                const char *href, *name;
        } nav[] = { { "/", "Overview" }, { "/tasks", "Tasks" }, { "/sessions", "Sessions" } };
        FILE *f = req->out;

        fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/style.css\"><title>",
              f);
        web_h(f, title);
        fputs(" · jada-agent</title></head><body><header><nav><strong>jada-agent</strong>", f);
        for (size_t i = 0; i < sizeof nav / sizeof nav[0]; i++)
                fprintf(f, "<a href=\"%s\"%s>%s</a>", nav[i].href,
                        strcmp(active, nav[i].name) == 0 ? " aria-current=\"page\"" : "", nav[i].name);
        fputs("</nav></header><main>", f);
}

void web_page_end(struct web_request *req)
{
        fputs("</main></body></html>\n", req->out);
}

/* Readable on a phone: one column, tables that scroll sideways. */
const char web_css[] =
        ":root{--fg:#1d2230;--muted:#5b6374;--line:#d9dde5;--bg:#fff;--soft:#f4f6f9;--ok:#2e7d32;--warn:#b26a00;"
        "--bad:#c62828;--info:#1565c0}\n"
        "*{box-sizing:border-box}\n"
        "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg)}\n"
        "header{background:var(--fg);color:#fff;padding:.5rem 1rem}\n"
        "nav{display:flex;gap:1rem;flex-wrap:wrap;align-items:baseline}\n"
        "nav a{color:#cfd6e4;text-decoration:none}nav a[aria-current]{color:#fff;border-bottom:2px solid #fff}\n"
        "main{max-width:64rem;margin:0 auto;padding:1rem}\n"
        "h1{font-size:1.4rem;margin:.2rem 0 1rem;overflow-wrap:anywhere}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\n"
        ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.6rem}\n"
        ".card{background:var(--soft);border-radius:.4rem;padding:.6rem;text-decoration:none;color:inherit}\n"
        ".card b{display:block;font-size:1.5rem}\n"
        ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}\n"
        "th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}\n"
        "th{font-weight:600;color:var(--muted);white-space:nowrap}td.num{text-align:right;white-space:nowrap}\n"
        ".state{display:inline-block;padding:0 .4rem;border-radius:.3rem;background:var(--soft);white-space:nowrap}\n"
        ".state-done{color:var(--ok)}.state-failed{color:var(--bad)}.state-needs_you{color:var(--info);font-weight:600}\n"
        ".state-running{color:var(--warn)}\n"
        ".problem{border-left:4px solid var(--bad);background:#fdecea;padding:.5rem .7rem;margin:.4rem 0}\n"
        ".problem.warning{border-color:var(--warn);background:#fff4e5}.fix{font-family:ui-monospace,monospace;"
        "font-size:.85rem;display:block;margin-top:.2rem;overflow-wrap:anywhere}\n"
        ".ok{border-left:4px solid var(--ok);background:#edf7ed;padding:.5rem .7rem}\n"
        "pre{background:var(--soft);padding:.6rem;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere;"
        "font-size:.85rem;max-height:40rem}\n"
        "form.inline{display:inline}button{font:inherit;padding:.35rem .8rem;border:1px solid var(--line);"
        "border-radius:.3rem;background:#fff;cursor:pointer}button.danger{color:var(--bad)}\n"
        "textarea,input[type=text],input[type=password],input[type=search],select{font:inherit;width:100%;"
        "padding:.4rem;border:1px solid var(--line);border-radius:.3rem}\n"
        "textarea{min-height:6rem}label{display:block;margin:.4rem 0}\n"
        ".filters{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end}.filters label{flex:1 1 10rem}\n"
        ".muted{color:var(--muted)}.question{background:#e8f1fc;border-left:4px solid var(--info);padding:.6rem}\n"
        "ol.timeline{padding-left:1.2rem}ol.timeline li{margin:.2rem 0}\n"
        "svg{max-width:100%;height:auto}\n"
        ".depth-1{padding-left:1.5rem}.depth-2{padding-left:3rem}.depth-3{padding-left:4.5rem}"
        ".depth-4{padding-left:6rem}\n";

const char *web_duration(char *buf, size_t size, const char *outcome, int64_t started, int64_t ended)
{
        if (!outcome)
                snprintf(buf, size, "running");
        else if (ended <= started)
                snprintf(buf, size, "under 1s");
        else
                duration_format(buf, size, (uint64_t)(ended - started) * USEC_PER_SEC);
        return buf;
}
