/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Every session's transcript: claude's stream-json exactly as it came,
 * compressed with zstd as it is read, in STATE/transcripts/SESSION.jsonl.zst
 * (SESSION: the sessions row's id). Each write is flushed to a zstd block
 * and to the file, so a crash loses at most what the last write held; the
 * writer's memory is zstd's window (1 MiB) and tables, whatever the session's
 * length. A reader takes what is there, also while the session still runs.
 */
struct transcript;

char *transcript_path(const char *state_dir, int64_t session);

/* Creates the file (and the directory, 0700). */
int transcript_open(const char *state_dir, int64_t session, struct transcript **ret);
/* Appends bytes of the stream: compressed, flushed. 0 or a negative errno;
 * after an error the transcript takes nothing more. */
int transcript_write(struct transcript *t, const void *data, size_t size);
/* Ends the zstd frame and closes the file; frees t. */
int transcript_close(struct transcript *t);
uint64_t transcript_bytes_in(const struct transcript *t);
uint64_t transcript_bytes_out(const struct transcript *t);

/* Reading: the lines of a transcript file, from where the last call left
 * off (a file that grows, for --follow). */
struct transcript_reader;
int transcript_reader_open(const char *path, struct transcript_reader **ret);
/* Calls line() for each complete line now in the file; returns the number
 * of lines, or a negative errno (-EBADMSG: not a zstd stream). */
int transcript_reader_next(struct transcript_reader *r, void (*line)(const char *text, size_t len, void *userdata),
                           void *userdata);
void transcript_reader_free(struct transcript_reader *r);

/* The readable form of one stream-json line: the assistant's text, each
 * tool call with its name and a one-line summary of its input, the head of
 * each tool result, turn numbers, retries, limits, and the result with its
 * cost. Lines that are not JSON are shown as such. */
struct transcript_view {
        FILE *out;
        unsigned turn;
        char last_message_id[128];
};
void transcript_render(struct transcript_view *view, const char *text, size_t len);
