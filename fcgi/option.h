/* option: settings read through a table.  One row per option names it
 * twice (the long command-line option and the config file key), says where
 * its value goes, what it takes, its range, its default and its help; the
 * same row then sets the default, reads a value from a config file or a
 * command line (with the error message made from the range), builds
 * getopt_long's entry and prints the option's lines of --help.
 *
 * Mechanism only: which settings exist is the caller's table (config.c).
 * Everything here runs in the thread that reads the configuration. */
#ifndef MJPEG_OPTION_H
#define MJPEG_OPTION_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

/* What a row's field holds, and how a value is read into it. */
enum option_kind {
	OPTION_TEXT,    /* char[size]: a string of at least min bytes that fits */
	OPTION_CHECKED, /* char[size]: a string that check() accepts; why says what passes */
	OPTION_COUNT,   /* int: a whole number from min to max */
	OPTION_BYTES,   /* size_t: a whole number of bytes from min to max */
	OPTION_MSEC,    /* int64_t microseconds: a whole number of milliseconds from min to max */
	OPTION_SEC,     /* int64_t microseconds: a whole number of seconds from min to max */
	OPTION_NAME,    /* int-sized enum: the index of one of names[] */
	OPTION_COMMAND, /* the command line only (--config, --help): no field, no key */
};

struct option_row {
	const char *name;  /* long option without "--": "max-viewers" */
	const char *key;   /* config file key: "max_viewers"; NULL for OPTION_COMMAND */
	const char *arg;   /* the argument as --help shows it ("N"); NULL: takes none */
	enum option_kind kind;
	size_t offset;     /* the field in the caller's settings struct ... */
	size_t size;       /* ... and its size in bytes */
	long min, max;     /* numbers: the range, inclusive; OPTION_TEXT: min is the least length */
	const char *def;   /* the default as a file would say it; NULL: the field stays zero */
	const char *shown; /* the default as --help shows it when def is NULL or empty ("none") */
	const char *const *names; /* OPTION_NAME: the values, NULL-terminated */
	int (*check)(const char *value); /* OPTION_CHECKED: 1 if value passes */
	const char *why;   /* OPTION_CHECKED: the requirement, "must be ..." */
	const char *help;  /* one sentence or two; --help adds the range and the default */
};

/* A field of struct TYPE, as a row's offset and size. */
#define OPTION_FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)

/* The row whose key is key, or NULL. */
const struct option_row *option_find_key(const struct option_row *rows, size_t count,
					 const char *key);

/* Reads value into the row's field of settings.  0, or -1 with the reason
 * in why ("must be a whole number of milliseconds from 100 to 600000"),
 * the field unchanged. */
int option_apply(const struct option_row *row, void *settings, const char *value, char *why,
		 size_t why_size) __attribute__((warn_unused_result));

/* Sets every row's default; a default its own row refuses is a bug
 * (FATAL). */
void option_defaults(const struct option_row *rows, size_t count, void *settings);

/* getopt_long's table: count + 1 entries (the last all zero); row i
 * answers OPTION_GETOPT_BASE + i. */
#define OPTION_GETOPT_BASE 256
void option_getopt_table(const struct option_row *rows, size_t count, struct option *table);

/* The rows' lines of --help: the option and its argument, then the help
 * wrapped at 79 columns, then the range and the default in parentheses:
 * "(20 to 10000; default 200)", "(error, warn, info or debug; default
 * info)", "(default none)". */
void option_print_help(FILE *out, const struct option_row *rows, size_t count);

#endif
