/*
 * log: leveled, timestamped lines to stderr (journald adds its own) or to a file.
 */
#ifndef CACHETORYD_UTIL_LOG_H
#define CACHETORYD_UTIL_LOG_H

enum log_level { LOG_DEBUG, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };

int log_setup(int level, const char *path);   /* path NULL or "" = stderr; 0 or -1 (errno) */
void log_teardown(void);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)   log_write(LOG_DEBUG, __VA_ARGS__)
#define log_verbose(...) log_write(LOG_VERBOSE, __VA_ARGS__)
#define log_notice(...)  log_write(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...)    log_write(LOG_WARNING, __VA_ARGS__)

#endif
