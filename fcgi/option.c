#include "option.h"

#include "log.h"
#include "parse.h"

#include <stdint.h>
#include <string.h>

/* --help: the help text starts in this column and lines end before the
 * next one. */
#define HELP_INDENT 25
#define HELP_WIDTH 79

const struct option_row *option_find_key(const struct option_row *rows, size_t count,
					 const char *key)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (rows[i].key && strcmp(rows[i].key, key) == 0)
			return &rows[i];
	return NULL;
}

/* "error, warn, info or debug" */
static void list_names(const char *const *names, char *buf, size_t size)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; names[i] && used < size; i++) {
		const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
		int n = snprintf(buf + used, size - used, "%s%s", sep, names[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* The unit a number of this kind is written in, as error messages say
 * it: "a whole number of milliseconds". */
static const char *unit_words(enum option_kind kind)
{
	switch (kind) {
	case OPTION_MSEC: return " of milliseconds";
	case OPTION_SEC: return " of seconds";
	case OPTION_BYTES: return " of bytes";
	default: return "";
	}
}

static int apply_text(const struct option_row *row, char *field, const char *value)
{
	size_t len = strlen(value);

	if ((long)len < row->min || len >= row->size)
		return -1;
	memcpy(field, value, len + 1);
	return 0;
}

static int apply_name(const struct option_row *row, char *field, const char *value)
{
	int i;

	if (row->size != sizeof(int))
		FATAL("option %s: a name's field must be int-sized", row->name);
	for (i = 0; row->names[i]; i++)
		if (strcmp(row->names[i], value) == 0) {
			memcpy(field, &i, sizeof(i));
			return 0;
		}
	return -1;
}

/* Stores a number read for a row, in the field's own type and unit. */
static void store_number(const struct option_row *row, char *field, long n)
{
	int as_int = (int)n;
	size_t as_size = (size_t)n;
	int64_t usec = (int64_t)n * (row->kind == OPTION_SEC ? 1000000 : 1000);

	if (row->kind == OPTION_COUNT && row->size == sizeof(as_int))
		memcpy(field, &as_int, sizeof(as_int));
	else if (row->kind == OPTION_BYTES && row->size == sizeof(as_size))
		memcpy(field, &as_size, sizeof(as_size));
	else if ((row->kind == OPTION_MSEC || row->kind == OPTION_SEC) && row->size == sizeof(usec))
		memcpy(field, &usec, sizeof(usec));
	else
		FATAL("option %s: field of %zu bytes for kind %d", row->name, row->size,
		      (int)row->kind);
}

int option_apply(const struct option_row *row, void *settings, const char *value, char *why,
		 size_t why_size)
{
	char *field = (char *)settings + row->offset;
	char names[128];
	long n;

	switch (row->kind) {
	case OPTION_TEXT:
		if (apply_text(row, field, value) == 0)
			return 0;
		snprintf(why, why_size, "%s", row->min > 0 ? "empty or too long" : "too long");
		return -1;
	case OPTION_CHECKED:
		if (row->check(value) && apply_text(row, field, value) == 0)
			return 0;
		snprintf(why, why_size, "%s", row->why);
		return -1;
	case OPTION_COUNT:
	case OPTION_BYTES:
	case OPTION_MSEC:
	case OPTION_SEC:
		if (parse_long(value, row->min, row->max, &n) == 0) {
			store_number(row, field, n);
			return 0;
		}
		snprintf(why, why_size, "must be a whole number%s from %ld to %ld",
			 unit_words(row->kind), row->min, row->max);
		return -1;
	case OPTION_NAME:
		if (apply_name(row, field, value) == 0)
			return 0;
		list_names(row->names, names, sizeof(names));
		snprintf(why, why_size, "must be %s", names);
		return -1;
	case OPTION_COMMAND:
		break;
	}
	snprintf(why, why_size, "not a setting");
	return -1;
}

void option_defaults(const struct option_row *rows, size_t count, void *settings)
{
	char why[256];
	size_t i;

	for (i = 0; i < count; i++)
		if (rows[i].def && option_apply(&rows[i], settings, rows[i].def, why, sizeof(why)) < 0)
			FATAL("option %s: default '%s' %s", rows[i].name, rows[i].def, why);
}

void option_getopt_table(const struct option_row *rows, size_t count, struct option *table)
{
	size_t i;

	for (i = 0; i < count; i++) {
		table[i].name = rows[i].name;
		table[i].has_arg = rows[i].arg ? required_argument : no_argument;
		table[i].flag = NULL;
		table[i].val = OPTION_GETOPT_BASE + (int)i;
	}
	memset(&table[count], 0, sizeof(table[count]));
}

/* Prints text word by word from column `column`, wrapping at HELP_WIDTH
 * to HELP_INDENT; returns the column it ended in. */
static int print_wrapped(FILE *out, const char *text, int column)
{
	while (*text) {
		size_t word = strcspn(text, " ");

		if (column > HELP_INDENT && column + 1 + (int)word > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_INDENT, "");
			column = HELP_INDENT;
		} else if (column > HELP_INDENT) {
			fputc(' ', out);
			column++;
		}
		fprintf(out, "%.*s", (int)word, text);
		column += (int)word;
		text += word;
		while (*text == ' ')
			text++;
	}
	return column;
}

/* "(20 to 10000; default 200)", or "" when there is nothing to say. */
static void describe_values(const struct option_row *row, char *buf, size_t size)
{
	const char *shown = row->def && row->def[0] ? row->def : row->shown;
	char names[128] = "";

	if (row->kind == OPTION_NAME)
		list_names(row->names, names, sizeof(names));
	else if (row->kind >= OPTION_COUNT && row->kind <= OPTION_SEC)
		snprintf(names, sizeof(names), "%ld to %ld", row->min, row->max);
	if (!shown && !names[0])
		buf[0] = '\0';
	else if (!shown)
		snprintf(buf, size, "(%s)", names);
	else
		snprintf(buf, size, "(%s%sdefault %s)", names, names[0] ? "; " : "", shown);
}

void option_print_help(FILE *out, const struct option_row *rows, size_t count)
{
	char head[64], values[192];
	size_t i;
	int column;

	for (i = 0; i < count; i++) {
		snprintf(head, sizeof(head), "  --%s%s%s", rows[i].name, rows[i].arg ? " " : "",
			 rows[i].arg ? rows[i].arg : "");
		fputs(head, out);
		column = (int)strlen(head);
		if (column + 2 > HELP_INDENT) {
			fprintf(out, "\n%*s", HELP_INDENT, "");
			column = HELP_INDENT;
		} else {
			fprintf(out, "%*s", HELP_INDENT - column, "");
			column = HELP_INDENT;
		}
		column = print_wrapped(out, rows[i].help, column);
		describe_values(&rows[i], values, sizeof(values));
		if (values[0])
			print_wrapped(out, values, column);
		fputc('\n', out);
	}
}
