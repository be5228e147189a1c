/*
 * config_table: the rows of the option table, private to the config module: config_table.c holds
 * them; config.c, config_caches.c and config_rewrite.c read them. Nothing else includes this header:
 * the rest of the program asks config.h's functions.
 *
 * A row says everything about one option: name, [section], type, bounds, the names of an enum, the
 * default written as a user would write it, the --help line, and flags. Adding an option is one row in
 * config_table.c plus its field in config_t.
 */
#ifndef CACHETORYD_CONFIG_TABLE_H
#define CACHETORYD_CONFIG_TABLE_H

#include <stddef.h>

#include "config.h"

/* config_option_t.flags */
#define CONFIG_LIVE 0x1             /* a reload (SIGHUP) or CONFIG SET changes it in place; without it, a
                                       restart does (and CONFIG SET refuses it) */

#define GB (1024LL * 1024 * 1024)   /* sizes in the table and in messages */
#define MB (1024LL * 1024)

#define CONFIG_MAX_OPTIONS 128      /* rows at most (config.c keeps per-row state in arrays this long) */

typedef enum config_type {
    CONFIG_BOOL,        /* yes | no -> int 1 / 0 */
    CONFIG_INT,         /* decimal integer in [min, max] -> int */
    CONFIG_MEMORY,      /* size with optional unit (config_parse_memory) in [min, max] -> long long */
    CONFIG_OCTAL,       /* file mode written in octal, in [min, max] -> int */
    CONFIG_STRING,      /* any text; empty means none -> char * or NULL */
    CONFIG_URL,         /* "scheme:..." (memory://, redis://host:port) -> char *, never NULL */
    CONFIG_ENUM,        /* one name of a list -> int */
    CONFIG_ADDRLIST,    /* 1..CONFIG_MAX_BIND numeric IPv4/IPv6 addresses -> cfg->bind, cfg->nbind */
} config_type_t;

/* The names of an enum option's values. */
typedef struct config_enum {
    int (*parse)(const char *name, int *out);   /* 0, or -1 if name is not one of them */
    const char *(*name)(int value);             /* value's name; NULL past the last value */
} config_enum_t;

typedef struct config_option {
    const char *name;               /* as in the file and after "--" on the command line */
    const char *section;            /* "server", "cache" or "log" (without brackets) */
    config_type_t type;
    size_t offset;                  /* of the field in config_t */
    long long min, max;             /* accepted range: CONFIG_INT, CONFIG_MEMORY, CONFIG_OCTAL */
    const config_enum_t *values;    /* CONFIG_ENUM */
    const char *def;                /* default, written as in the file ("" = none) */
    const char *help;               /* one line for --help */
    unsigned flags;                 /* CONFIG_LIVE... */
} config_option_t;

/* The rows, in the order CONFIG GET and --help list them; config_noptions of them. */
extern const config_option_t config_options[];
extern const size_t config_noptions;

/* The [sections] a file may have, in the order --help lists them. */
extern const char *const config_sections[];
extern const size_t config_nsections;

/* Between config.c and config_rewrite.c (CONFIG REWRITE). */

/* The row of the option named name (any case), or NULL. */
const config_option_t *config_find(const char *name);
/* The field of o in cfg. */
void *config_field(const config_t *cfg, const config_option_t *o);
/* Append o's value in cfg as CONFIG GET shows it (raw: URLs unredacted), NUL-terminated. */
struct buf;
void config_render(struct buf *b, const config_t *cfg, const config_option_t *o, int raw);
/* v as a user would write it: "1gb", "64kb", "1000". */
void config_format_memory(char *out, size_t outlen, long long v);

/* Between config.c and config_caches.c ([cache.NAME] sections). */

/* Parse text (unquoted already) as a value of the option named name: *num for numbers, *str (a new
 * string, or NULL for none) for text. 0, or -1 with the reason in err. */
int config_parse_option(const char *name, const char *text, long long *num, char **str, char *err, size_t errlen);
/* The [section] (without brackets) of the option named name, or NULL when there is no such option. */
const char *config_option_section(const char *name);
/* The value without one pair of surrounding quotes, as a new string. */
char *config_unquote(const char *s);

/* A header "[cache.NAME]" (the text between the brackets, n bytes) at line: 1 if it names a cache
 * section, 0 if not one (another section); -1 with reason when it is a bad one (name, count, twice). */
int config_caches_open(config_t *cfg, const char *section, size_t n, int line, char *reason, size_t rlen);
/* name = value under [section], a cache section (config_caches_open said 1). 0, or -1 with reason. */
int config_caches_set(config_t *cfg, const char *section, const char *name, const char *value, int line,
                      char *reason, size_t rlen);
/* After the file: every section has a prefix. 0, or -1 with reason and *line the section's header. */
int config_caches_check(const config_t *cfg, int *line, char *reason, size_t rlen);
void config_caches_deinit(config_t *cfg);

#endif
