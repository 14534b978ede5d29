#include "cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Characters a backslash escapes inside double quotes (POSIX 2.2.3). */
static int escapable_in_double(char c)
{
	return c == '$' || c == '`' || c == '"' || c == '\\' || c == '\n';
}

/* Appends c to the words' text (counted only, when text is NULL). */
static void put(char *text, size_t *out, char c)
{
	if (text)
		text[*out] = c;
	(*out)++;
}

/* The quoted text that starts at p (a ' or a "), up to its closing quote,
 * appended to the words' text: inside '...' every byte stands for itself;
 * inside "..." a backslash escapes what POSIX lets it escape there, and a
 * backslash-newline vanishes.  Returns the byte after the closing quote,
 * or NULL when there is none. */
static const char *quoted(const char *p, char *text, size_t *out)
{
	char quote = *p++;

	while (*p && *p != quote) {
		if (quote == '"' && *p == '\\') {
			if (p[1] == '\n') {
				p += 2;
				continue;
			}
			if (escapable_in_double(p[1]))
				p++;
		}
		put(text, out, *p++);
	}
	return *p ? p + 1 : NULL;
}

/* One pass over line.  words != NULL: the words are written to text (one
 * NUL after each) and words[i] points at each.  Returns the word count,
 * or -1 with why set. */
static int split(const char *line, size_t column_offset, char *text, char **words, char *why,
		 size_t why_size)
{
	const char *p = line;
	size_t out = 0;
	int count = 0;

	for (;;) {
		int in_word = 0;

		while (blank(*p))
			p++;
		if (!*p)
			break;
		if (words)
			words[count] = text + out;
		while (*p && !blank(*p)) {
			in_word = 1;
			if (*p == '\'' || *p == '"') {
				const char *open = p;

				p = quoted(p, text, &out);
				if (!p) {
					snprintf(why, why_size,
						 "unterminated %c quote opened at column %zu", *open,
						 (size_t)(open - line) + 1 + column_offset);
					return -1;
				}
			} else if (*p == '\\') {
				if (!p[1]) {
					snprintf(why, why_size,
						 "a backslash at column %zu ends the command",
						 (size_t)(p - line) + 1 + column_offset);
					return -1;
				}
				p++;
				if (*p != '\n')
					put(text, &out, *p);
				p++;
			} else {
				put(text, &out, *p++);
			}
		}
		if (in_word) {
			put(text, &out, '\0');
			count++;
		}
	}
	if (!count) {
		snprintf(why, why_size, "no command");
		return -1;
	}
	return count;
}

int cmdline_split(const char *line, size_t column_offset, struct cmdline *out, char *why,
		  size_t why_size)
{
	size_t len = strlen(line);
	int count;
	char *text;

	memset(out, 0, sizeof(*out));
	count = split(line, column_offset, NULL, NULL, why, why_size);
	if (count < 0)
		return -1;
	/* The words take at most len + 1 bytes: every word but the last is
	 * followed by a blank in the line, whose byte its NUL takes. */
	out->argv = malloc(((size_t)count + 1) * sizeof(char *) + len + 1);
	if (!out->argv) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	text = (char *)(out->argv + count + 1);
	if (split(line, column_offset, text, out->argv, why, why_size) != count) {
		cmdline_free(out); /* cannot happen: the same line split twice */
		snprintf(why, why_size, "the command line changed while it was split");
		return -1;
	}
	out->argv[count] = NULL;
	out->argc = count;
	return 0;
}

void cmdline_free(struct cmdline *out)
{
	free(out->argv);
	out->argv = NULL;
	out->argc = 0;
}
