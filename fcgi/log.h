/* log: one line per event on stderr, with a level and the process id.
 *
 * Failures are logged once, where they happen, naming the call and the
 * object ("bus: mmap(/dev/shm/x/demo): Cannot allocate memory").  FATAL is
 * for broken invariants only: it logs file and line and aborts. */
#ifndef MJPEG_LOG_H
#define MJPEG_LOG_H

/* Named apart from <syslog.h>'s LOG_ERR, LOG_INFO, LOG_DEBUG. */
enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_COUNT,
};

/* "error", "warn", "info", "debug", as the log lines and log_level say,
 * then NULL. */
extern const char *const log_level_names[LOG_LEVEL_COUNT + 1];

/* Messages above this level are dropped.  Set once at start-up. */
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

_Noreturn void log_fatal(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define FATAL(...) log_fatal(__FILE__, __LINE__, __VA_ARGS__)

/* For calls that cannot fail unless the program is broken. */
#define CHECK_ZERO(call)                                                   \
	do {                                                               \
		int check_rc_ = (call);                                    \
		if (check_rc_ != 0)                                        \
			FATAL("%s: returned %d", #call, check_rc_);        \
	} while (0)

#endif
