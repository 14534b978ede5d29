/* cmdline: an exec: source's command line split into argv the way a POSIX
 * shell splits words, without the shell: blanks (space, tab, newline)
 * separate words; 'single quotes' keep everything up to the next quote;
 * "double quotes" keep everything but a backslash before $ ` " \ or a
 * newline, which stands for that character; a backslash outside quotes
 * keeps the next character (a backslash and a newline vanish).  Nothing is
 * expanded: $HOME, `cmd`, ~ and * stay as written.  A command that wants a
 * shell's features says so: exec:sh -c '...'.
 *
 * Pure: no state, safe from any thread. */
#ifndef MJPEG_CMDLINE_H
#define MJPEG_CMDLINE_H

#include <stddef.h>

struct cmdline {
	char **argv; /* argc words, then NULL; malloc'd with the words */
	int argc;
};

/* Splits line into out (freed by cmdline_free).  -1 when it cannot be
 * split: an unterminated quote, a backslash at the very end, no word at
 * all, or out of memory; why then says what and where ("unterminated '
 * quote opened at column 7"; columns count bytes of line from 1, plus
 * column_offset, so a message can point into the text the line came
 * from). */
int cmdline_split(const char *line, size_t column_offset, struct cmdline *out, char *why,
		  size_t why_size) __attribute__((warn_unused_result));

/* Frees what cmdline_split made; out is empty after (and may be freed
 * again). */
void cmdline_free(struct cmdline *out);

#endif
