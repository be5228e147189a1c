/*
 * config: everything that reads the option table.
 *
 * One row per option (config_options[] in config_table.c): name, section, type, bounds, default, help,
 * flags, and the field of config_t it fills. config_init() applies the defaults by parsing each row's
 * default text, so a default is written exactly as a user would write it and is checked by the same
 * code; the INI reader, the command line, CONFIG GET / SET / REWRITE, --help and reloads (CONFIG_LIVE:
 * config_is_live) all walk the same rows. Adding an option is one row in config_table.c plus its field in config.h.
 *
 * The file is read with inih, through ini_parse_stream() and a reader of our own (config_file_read_cb)
 * rather than ini_parse(), because:
 *   - Debian's libinih is built without INI_HANDLER_LINENO, so the handler is not told the line; the
 *     reader counts lines itself (inih asks for exactly one line per call) and keeps the line's text
 *     for the error message;
 *   - the library keeps parsing after an error; the reader stops it (returns EOF) at the first one;
 *   - it checks section headers and "name = value" syntax itself, so those errors say what is wrong
 *     instead of inih's bare line number;
 *   - it hands inih each line with its indentation removed, which turns off inih's multi-line values
 *     (an indented line would otherwise silently continue the previous option's value);
 *   - a comment longer than inih's fixed line buffer is passed as an empty line instead of being split
 *     into garbage; a long option line is an error ("line is too long").
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "config_table.h"
#include "url.h"
#include "util/buf.h"
#include "util/glob.h"
#include "util/mem.h"

/* A parsed value, checked but not yet stored: config_set changes nothing when parsing fails. */
typedef struct config_value {
    long long num;                  /* BOOL, INT, MEMORY, OCTAL, ENUM */
    char *str;                      /* STRING, URL: owned; NULL = none */
    char *list[CONFIG_MAX_BIND];    /* ADDRLIST: owned */
    int nlist;
} config_value_t;

const config_option_t *config_find(const char *name)
{
    for (size_t i = 0; i < config_noptions; i++) {
        if (strcasecmp(config_options[i].name, name) == 0)
            return &config_options[i];
    }
    return NULL;
}

void *config_field(const config_t *cfg, const config_option_t *o)
{
    return (char *)cfg + o->offset;
}

/* --- parsing one value ------------------------------------------------------------------------- */

/* "1073741824" -> "1gb": a bound as a user would write it. */
void config_format_memory(char *out, size_t outlen, long long v)
{
    if (v != 0 && v % GB == 0)
        snprintf(out, outlen, "%lldgb", v / GB);
    else if (v != 0 && v % MB == 0)
        snprintf(out, outlen, "%lldmb", v / MB);
    else if (v != 0 && v % 1024 == 0)
        snprintf(out, outlen, "%lldkb", v / 1024);
    else
        snprintf(out, outlen, "%lld", v);
}

/* The reason a value of o was refused, naming what is accepted. */
static void config_reason(const config_option_t *o, char *err, size_t errlen)
{
    char lo[32], hi[32];
    buf_t b;

    switch (o->type) {
    case CONFIG_BOOL:
        snprintf(err, errlen, "%s must be yes or no", o->name);
        break;
    case CONFIG_INT:
        snprintf(err, errlen, "%s must be an integer between %lld and %lld", o->name, o->min, o->max);
        break;
    case CONFIG_MEMORY:
        config_format_memory(lo, sizeof(lo), o->min);
        config_format_memory(hi, sizeof(hi), o->max);
        if (o->max == LLONG_MAX)
            snprintf(err, errlen, "%s must be a size such as 100mb (units b, k, kb, m, mb, g, gb) "
                     "of at least %s", o->name, lo);
        else
            snprintf(err, errlen, "%s must be a size such as 100mb (units b, k, kb, m, mb, g, gb) "
                     "between %s and %s", o->name, lo, hi);
        break;
    case CONFIG_OCTAL:
        snprintf(err, errlen, "%s must be an octal file mode between %llo and %llo", o->name,
                 (unsigned long long)o->min, (unsigned long long)o->max);
        break;
    case CONFIG_STRING:
        snprintf(err, errlen, "%s must be text", o->name);    /* not reached: any text will do */
        break;
    case CONFIG_URL:
        snprintf(err, errlen, "%s must be a URL such as %s", o->name, o->def);
        break;
    case CONFIG_ENUM:
        buf_init(&b);
        buf_printf(&b, "%s must be one of ", o->name);
        for (int i = 0; o->values->name(i) != NULL; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", o->values->name(i));
        buf_append(&b, "", 1);
        snprintf(err, errlen, "%s", b.data);
        buf_deinit(&b);
        break;
    case CONFIG_ADDRLIST:
        snprintf(err, errlen, "%s must be 1 to %d IPv4 or IPv6 addresses separated by spaces", o->name,
                 CONFIG_MAX_BIND);
        break;
    }
}

/* A whole decimal (base 10) or octal (base 8) number: no sign other than '-', no spaces, no junk. */
static int config_parse_ll(const char *s, int base, long long *out)
{
    if (!isdigit((unsigned char)*s) && !(*s == '-' && isdigit((unsigned char)s[1])))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, base);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* "scheme:" then anything, the scheme as RFC 3986 allows (a letter, then letters, digits, + - .). */
static int config_is_url(const char *s)
{
    if (!isalpha((unsigned char)*s))
        return 0;
    while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' || *s == '.')
        s++;
    return *s == ':';
}

static void config_value_free(config_value_t *v)
{
    mem_free(v->str);
    for (int i = 0; i < v->nlist; i++)
        mem_free(v->list[i]);
}

/* Split an address list; each must be a numeric IPv4 or IPv6 address (the listener binds them as
 * given, it does not resolve names). */
static int config_parse_addrlist(const char *s, config_value_t *v)
{
    const char *p = s;

    for (;;) {
        p += strspn(p, " \t");
        if (*p == '\0')
            break;
        size_t n = strcspn(p, " \t");
        if (v->nlist == CONFIG_MAX_BIND || n >= INET6_ADDRSTRLEN)
            return -1;
        char addr[INET6_ADDRSTRLEN];
        unsigned char sa[sizeof(struct in6_addr)];
        memcpy(addr, p, n);
        addr[n] = '\0';
        if (inet_pton(AF_INET, addr, sa) != 1 && inet_pton(AF_INET6, addr, sa) != 1)
            return -1;
        v->list[v->nlist++] = mem_strdup(addr);
        p += n;
    }
    return v->nlist > 0 ? 0 : -1;
}

/* Parse text as a value of o into v. 0, or -1 with the reason in err (and nothing left in v). */
static int config_parse_value(const config_option_t *o, const char *s, config_value_t *v,
                              char *err, size_t errlen)
{
    int ok = 0, n;

    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case CONFIG_BOOL:
        ok = strcasecmp(s, "yes") == 0 || strcasecmp(s, "no") == 0;
        v->num = strcasecmp(s, "yes") == 0;
        break;
    case CONFIG_INT:
        ok = config_parse_ll(s, 10, &v->num) == 0 && v->num >= o->min && v->num <= o->max;
        break;
    case CONFIG_MEMORY:
        ok = config_parse_memory(s, &v->num) == 0 && v->num >= o->min && v->num <= o->max;
        break;
    case CONFIG_OCTAL:
        ok = config_parse_ll(s, 8, &v->num) == 0 && v->num >= o->min && v->num <= o->max;
        break;
    case CONFIG_STRING:
        ok = 1;
        v->str = *s ? mem_strdup(s) : NULL;
        break;
    case CONFIG_URL:
        ok = config_is_url(s);
        v->str = ok ? mem_strdup(s) : NULL;
        break;
    case CONFIG_ENUM:
        ok = o->values->parse(s, &n) == 0;
        v->num = n;
        break;
    case CONFIG_ADDRLIST:
        ok = config_parse_addrlist(s, v) == 0;
        break;
    }
    if (!ok) {
        config_value_free(v);
        memset(v, 0, sizeof(*v));
        config_reason(o, err, errlen);
        return -1;
    }
    return 0;
}

/* Store v in cfg, freeing what it replaces; v's strings now belong to cfg. */
static void config_commit(config_t *cfg, const config_option_t *o, config_value_t *v)
{
    void *field = config_field(cfg, o);

    switch (o->type) {
    case CONFIG_BOOL:
    case CONFIG_INT:
    case CONFIG_OCTAL:
    case CONFIG_ENUM:
        *(int *)field = (int)v->num;    /* bounds are within int for every such row */
        break;
    case CONFIG_MEMORY:
        *(long long *)field = v->num;
        break;
    case CONFIG_STRING:
    case CONFIG_URL:
        mem_free(*(char **)field);
        *(char **)field = v->str;
        break;
    case CONFIG_ADDRLIST:
        /* The only list option is bind; its count lives next to it in config_t. */
        for (int i = 0; i < cfg->nbind; i++)
            mem_free(cfg->bind[i]);
        memset(cfg->bind, 0, sizeof(cfg->bind));
        memcpy(cfg->bind, v->list, sizeof(v->list[0]) * (size_t)v->nlist);
        cfg->nbind = v->nlist;
        break;
    }
}

/* The value without one pair of surrounding double or single quotes, as a new string. */
char *config_unquote(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0])
        return mem_strndup(s + 1, n - 2);
    return mem_strdup(s);
}

static int config_set_option(config_t *cfg, const config_option_t *o, const char *text,
                             char *err, size_t errlen)
{
    config_value_t v;
    char *s = config_unquote(text);
    int rc = config_parse_value(o, s, &v, err, errlen);
    if (rc == 0)
        config_commit(cfg, o, &v);
    mem_free(s);
    return rc;
}

/*
 * Set one option from its text as written in the file (quotes around it are removed). On error
 * returns -1 with the reason in err ("port must be an integer between 0 and 65535", "unknown option
 * 'prot'") and cfg unchanged.
 */
int config_set(config_t *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const config_option_t *o = config_find(name);
    if (o == NULL) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -1;
    }
    return config_set_option(cfg, o, value, err, errlen);
}

/*
 * CONFIG SET's form of config_set: the value is taken as the client sent it, quotes and all. A value
 * with a line break is refused (it could not be written to the file by CONFIG REWRITE).
 */
int config_set_verbatim(config_t *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const config_option_t *o = config_find(name);
    config_value_t v;

    if (o == NULL) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -1;
    }
    if (strpbrk(value, "\r\n") != NULL) {
        snprintf(err, errlen, "%s cannot contain a line break", o->name);
        return -1;
    }
    if (config_parse_value(o, value, &v, err, errlen) < 0)
        return -1;
    config_commit(cfg, o, &v);
    return 0;
}

int config_exists(const char *name)
{
    return config_find(name) != NULL;
}

const char *config_canonical_name(const char *name)
{
    const config_option_t *o = config_find(name);
    return o != NULL ? o->name : NULL;
}

const char *config_option_section(const char *name)
{
    const config_option_t *o = config_find(name);
    return o != NULL ? o->section : NULL;
}

int config_parse_option(const char *name, const char *text, long long *num, char **str, char *err, size_t errlen)
{
    const config_option_t *o = config_find(name);
    config_value_t v;

    if (o == NULL || o->type == CONFIG_ADDRLIST) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -1;
    }
    if (config_parse_value(o, text, &v, err, errlen) < 0)
        return -1;
    *num = v.num;
    *str = v.str;
    return 0;
}

/* --- defaults ---------------------------------------------------------------------------------- */

/* Apply every row's default. A default the row's own parser refuses is a bug in the table: abort
 * (unit tests call this first, so such a bug cannot get past them). */
void config_init(config_t *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < config_noptions; i++) {
        if (config_set_option(cfg, &config_options[i], config_options[i].def, err, sizeof(err)) < 0) {
            fprintf(stderr, "cachetoryd: bad default '%s' for %s: %s\n", config_options[i].def,
                    config_options[i].name, err);
            abort();
        }
    }
}

void config_deinit(config_t *cfg)
{
    for (size_t i = 0; i < config_noptions; i++) {
        const config_option_t *o = &config_options[i];
        if (o->type == CONFIG_STRING || o->type == CONFIG_URL) {
            char **p = config_field(cfg, o);
            mem_free(*p);
            *p = NULL;
        }
    }
    for (int i = 0; i < cfg->nbind; i++)
        mem_free(cfg->bind[i]);
    memset(cfg->bind, 0, sizeof(cfg->bind));
    cfg->nbind = 0;
    config_caches_deinit(cfg);
}

/* A deep copy of src's options; the [cache.NAME] sections are not copied (dst has none). */
void config_copy_options(config_t *dst, const config_t *src)
{
    memcpy(dst, src, sizeof(*dst));
    memset(dst->caches, 0, sizeof(dst->caches));
    dst->ncaches = 0;
    for (size_t i = 0; i < config_noptions; i++) {
        const config_option_t *o = &config_options[i];
        if (o->type == CONFIG_STRING || o->type == CONFIG_URL) {
            char **p = config_field(dst, o);
            if (*p != NULL)
                *p = mem_strdup(*p);
        }
    }
    for (int i = 0; i < dst->nbind; i++)
        dst->bind[i] = mem_strdup(src->bind[i]);
}

/* --- the INI file ------------------------------------------------------------------------------ */

typedef struct config_file {
    config_t *cfg;
    const char *path;
    FILE *f;
    char *line;                     /* getline() buffer: the current line */
    size_t linecap;
    const char *text;               /* the current line without indentation and newline */
    int lineno;                     /* number of the current line, from 1 */
    int failed;                     /* err holds the first error; the reader stops */
    int seen[CONFIG_MAX_OPTIONS];      /* line where each option was set, 0 = not yet */
    char *err;
    size_t errlen;
} config_file_t;

/* Record the first error, quoting the current line: "path:12: 'port = x': reason". */
static void config_file_fail(config_file_t *cf, const char *reason)
{
    if (cf->failed)
        return;
    cf->failed = 1;
    /* the line of a secret option (requirepass = ...) is quoted without its value */
    char name[64];
    size_t n = strcspn(cf->text, "= \t");
    if (n > 0 && n < sizeof(name) && strchr(cf->text, '=') != NULL) {
        memcpy(name, cf->text, n);
        name[n] = '\0';
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (config_is_secret(name)) {
            snprintf(cf->err, cf->errlen, "%s:%d: '%s = (hidden)': %s", cf->path, cf->lineno, name, reason);
            return;
        }
    }
    snprintf(cf->err, cf->errlen, "%s:%d: '%s': %s", cf->path, cf->lineno, cf->text, reason);
}

/* Read the next line into cf->line and cf->text. 0, or -1 at end of file or on a read error. */
static int config_file_getline(config_file_t *cf)
{
    ssize_t n = getline(&cf->line, &cf->linecap, cf->f);
    if (n < 0)
        return -1;
    cf->lineno++;
    char *s = cf->line;
    if (cf->lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;     /* UTF-8 byte order mark */
    while (n > 0 && isspace((unsigned char)cf->line[n - 1]))
        cf->line[--n] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    cf->text = s;
    return 0;
}

static int config_section_known(const char *s, size_t n)
{
    for (size_t i = 0; i < config_nsections; i++) {
        if (strlen(config_sections[i]) == n && strncasecmp(config_sections[i], s, n) == 0)
            return 1;
    }
    return 0;
}

/* The line is a comment from p on: nothing, or ';' / '#' and anything. */
static int config_rest_is_comment(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return *p == '\0' || *p == ';' || *p == '#';
}

/*
 * inih's fgets-like reader (see the top of the file for why we have our own): fills str (num bytes)
 * with the next line, checked and stripped of indentation, or returns NULL to end the parse — at end
 * of file, and at the first error, which it or the handler has recorded.
 */
static char *config_file_read_cb(char *str, int num, void *stream)
{
    config_file_t *cf = stream;
    const char *s;

    if (cf->failed)
        return NULL;
    if (config_file_getline(cf) < 0) {
        if (ferror(cf->f)) {
            cf->failed = 1;
            snprintf(cf->err, cf->errlen, "%s: cannot read: %s", cf->path, strerror(errno));
        }
        return NULL;
    }
    s = cf->text;
    if (*s == '\0' || *s == ';' || *s == '#') {
        str[0] = '\0';      /* blank or comment, however long */
        return str;
    }
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL) {
            config_file_fail(cf, "a section header must end with ']'");
            return NULL;
        }
        char reason[256];
        int named = config_caches_open(cf->cfg, s + 1, (size_t)(end - s - 1), cf->lineno, reason, sizeof(reason));
        if (named < 0) {
            config_file_fail(cf, reason);
            return NULL;
        }
        if (!named && !config_section_known(s + 1, (size_t)(end - s - 1))) {
            snprintf(reason, sizeof(reason), "unknown section '%.*s' (expected [server], [cache], [upstream] or [log])",
                     (int)(end - s - 1 > 40 ? 40 : end - s - 1), s + 1);
            config_file_fail(cf, reason);
            return NULL;
        }
        if (!config_rest_is_comment(end + 1)) {
            config_file_fail(cf, "nothing but a comment may follow a section header");
            return NULL;
        }
    } else if (s[strcspn(s, "=:")] != '=' || s[0] == '=') {
        /* inih would also take "name: value"; "name value" (redis.conf style) it would refuse
         * with no reason, and "bind ::1" it would read as bind = ":1". */
        config_file_fail(cf, "expected 'name = value', a [section] or a comment");
        return NULL;
    }
    size_t n = strlen(s);
    if (n >= (size_t)num) {
        char reason[64];
        snprintf(reason, sizeof(reason), "line is too long (at most %d characters)", num - 1);
        config_file_fail(cf, reason);
        return NULL;
    }
    memcpy(str, s, n + 1);
    return str;
}

static int config_file_handler(void *user, const char *section, const char *name, const char *value)
{
    config_file_t *cf = user;
    const config_option_t *o = config_find(name);
    char reason[512];

    if (strncasecmp(section, "cache.", 6) == 0) {
        if (config_caches_set(cf->cfg, section, name, value, cf->lineno, reason, sizeof(reason)) < 0)
            goto fail;
        return 1;
    }
    if (o == NULL) {
        snprintf(reason, sizeof(reason), "unknown option '%s'", name);
        goto fail;
    }
    size_t idx = (size_t)(o - config_options);
    if (*section != '\0' && strcasecmp(section, o->section) != 0) {
        snprintf(reason, sizeof(reason), "%s belongs in [%s], not [%s]", o->name, o->section, section);
        goto fail;
    }
    if (cf->seen[idx] != 0) {
        snprintf(reason, sizeof(reason), "%s is already set at line %d", o->name, cf->seen[idx]);
        goto fail;
    }
    if (config_set_option(cf->cfg, o, value, reason, sizeof(reason)) < 0)
        goto fail;
    cf->seen[idx] = cf->lineno;
    return 1;

fail:
    config_file_fail(cf, reason);
    return 0;
}

/* Make line lineno the current line again (to quote a line inih refused after reading past it). */
static void config_file_seek_line(config_file_t *cf, int lineno)
{
    rewind(cf->f);
    cf->lineno = 0;
    cf->text = "";
    while (cf->lineno < lineno && config_file_getline(cf) == 0)
        ;
}

static int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
    config_file_t cf;
    int rc;

    memset(&cf, 0, sizeof(cf));
    cf.cfg = cfg;
    cf.path = path;
    cf.text = "";
    cf.err = err;
    cf.errlen = errlen;
    cf.f = fopen(path, "r");
    if (cf.f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }

    rc = ini_parse_stream(config_file_read_cb, &cf, config_file_handler, &cf);
    int line;
    char reason[256];
    if (!cf.failed && rc == 0 && config_caches_check(cfg, &line, reason, sizeof(reason)) < 0) {
        config_file_seek_line(&cf, line);
        config_file_fail(&cf, reason);
    } else if (!cf.failed && rc > 0) {
        /* inih refused a line our reader let through: not expected, but do not let it pass. */
        config_file_seek_line(&cf, rc);
        config_file_fail(&cf, "syntax error");
    } else if (!cf.failed && rc < 0) {
        cf.failed = 1;
        snprintf(err, errlen, "%s: cannot parse (inih error %d)", path, rc);
    }

    free(cf.line);      /* getline's buffer comes from malloc */
    fclose(cf.f);
    return cf.failed ? -1 : 0;
}

/* --- the command line -------------------------------------------------------------------------- */

static int config_load_args(config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    int seen[CONFIG_MAX_OPTIONS] = { 0 };
    char reason[512];

    for (int i = 0; i < argc; i += 2) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            snprintf(err, errlen, "'%s': expected --name value", arg);
            return -1;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s: missing value", arg);
            return -1;
        }
        const char *value = argv[i + 1];
        const config_option_t *o = config_find(arg + 2);
        if (o == NULL) {
            snprintf(err, errlen, "%s '%s': unknown option '%s'", arg, value, arg + 2);
            return -1;
        }
        size_t idx = (size_t)(o - config_options);
        if (seen[idx]) {
            snprintf(err, errlen, "%s '%s': %s is already given on the command line", arg, value, o->name);
            return -1;
        }
        seen[idx] = 1;
        if (config_set_option(cfg, o, value, reason, sizeof(reason)) < 0) {
            snprintf(err, errlen, "%s '%s': %s", arg, value, reason);
            return -1;
        }
    }
    return 0;
}

int config_load(config_t *cfg, const char *path, int argc, char **argv, char *err, size_t errlen)
{
    int rc = -1;

    if (path == NULL || config_load_file(cfg, path, err, errlen) == 0)
        rc = config_load_args(cfg, argc, argv, err, errlen);
    if (rc < 0)
        url_redact_in(err, errlen);     /* the message quotes the line: never a backend's password */
    return rc;
}

/* --- CONFIG GET and --help --------------------------------------------------------------------- */

/* Append o's value in cfg as CONFIG GET shows it: numbers in decimal (sizes in bytes), the mode in
 * octal, yes/no, names, "" for none, addresses joined by spaces; URLs with their password redacted
 * unless raw. */
void config_render(buf_t *b, const config_t *cfg, const config_option_t *o, int raw)
{
    const void *field = config_field(cfg, o);
    const char *s;

    switch (o->type) {
    case CONFIG_BOOL:
        buf_append_str(b, *(const int *)field ? "yes" : "no");
        break;
    case CONFIG_INT:
        buf_printf(b, "%d", *(const int *)field);
        break;
    case CONFIG_MEMORY:
        buf_printf(b, "%lld", *(const long long *)field);
        break;
    case CONFIG_OCTAL:
        buf_printf(b, "%o", (unsigned)*(const int *)field);
        break;
    case CONFIG_STRING:
        s = *(char *const *)field;
        buf_append_str(b, s ? s : "");
        break;
    case CONFIG_URL:
        s = *(char *const *)field;
        if (raw) {
            buf_append_str(b, s ? s : "");
        } else {
            char *shown = url_redact(s ? s : "");
            buf_append_str(b, shown);
            mem_free(shown);
        }
        break;
    case CONFIG_ENUM:
        s = o->values->name(*(const int *)field);
        buf_append_str(b, s ? s : "");
        break;
    case CONFIG_ADDRLIST:
        for (int i = 0; i < cfg->nbind; i++)
            buf_printf(b, "%s%s", i ? " " : "", cfg->bind[i]);
        break;
    }
    buf_append(b, "", 1);
}

static void config_get_generic(const config_t *cfg, const char *pattern, int raw, config_get_fn *fn, void *priv)
{
    size_t plen = strlen(pattern);
    buf_t b;

    buf_init(&b);
    for (size_t i = 0; i < config_noptions; i++) {
        const config_option_t *o = &config_options[i];
        if (!glob_match(pattern, plen, o->name, strlen(o->name), 1))
            continue;
        buf_reset(&b);
        config_render(&b, cfg, o, raw);
        fn(priv, o->name, b.data);
    }
    buf_deinit(&b);
}

void config_get(const config_t *cfg, const char *pattern, config_get_fn *fn, void *priv)
{
    config_get_generic(cfg, pattern, 0, fn, priv);
}

void config_get_raw(const config_t *cfg, const char *pattern, config_get_fn *fn, void *priv)
{
    config_get_generic(cfg, pattern, 1, fn, priv);
}

int config_is_secret(const char *name)
{
    return strcasecmp(name, "requirepass") == 0 || strcasecmp(name, "tls-key-file-pass") == 0;
}

int config_is_live(const char *name)
{
    const config_option_t *o = config_find(name);
    return o != NULL && (o->flags & CONFIG_LIVE) != 0;
}

const char *config_enum_name(const char *option, int value)
{
    const config_option_t *o = config_find(option);
    return o != NULL && o->type == CONFIG_ENUM ? o->values->name(value) : NULL;
}

/* What a value of o looks like, for --help: "<integer 0..65535>", "<size>"... */
static void config_describe(buf_t *b, const config_option_t *o)
{
    char lo[32], hi[32];

    switch (o->type) {
    case CONFIG_BOOL:
        buf_append_str(b, "<yes|no>");
        break;
    case CONFIG_INT:
        buf_printf(b, "<integer %lld..%lld>", o->min, o->max);
        break;
    case CONFIG_MEMORY:
        config_format_memory(lo, sizeof(lo), o->min);
        config_format_memory(hi, sizeof(hi), o->max);
        buf_printf(b, o->max == LLONG_MAX ? "<size >= %s>" : "<size %s..%s>", lo, hi);
        break;
    case CONFIG_OCTAL:
        buf_append_str(b, "<octal mode>");
        break;
    case CONFIG_STRING:
        buf_append_str(b, "<text>");
        break;
    case CONFIG_URL:
        buf_append_str(b, "<url>");
        break;
    case CONFIG_ENUM:
        buf_append_str(b, "<");
        for (int i = 0; o->values->name(i) != NULL; i++)
            buf_printf(b, "%s%s", i ? "|" : "", o->values->name(i));
        buf_append_str(b, ">");
        break;
    case CONFIG_ADDRLIST:
        buf_append_str(b, "<addresses>");
        break;
    }
    buf_append(b, "", 1);
}

void config_print_help(FILE *f)
{
    buf_t b;
    const char *section = NULL;

    buf_init(&b);
    fprintf(f, "Options, as 'name = value' under their [section] in the file, or as --name value on the\n"
               "command line (which wins over the file). Sizes take units: b, k (1000), kb (1024), m, mb,\n"
               "g, gb.\n");
    for (size_t i = 0; i < config_noptions; i++) {
        const config_option_t *o = &config_options[i];
        if (section == NULL || strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(f, "\n[%s]\n", section);
        }
        buf_reset(&b);
        config_describe(&b, o);
        fprintf(f, "  --%s %s  (default: %s)\n      %s\n", o->name, b.data, *o->def ? o->def : "none",
                o->help);
    }
    buf_deinit(&b);
}

/* --- sizes ------------------------------------------------------------------------------------- */

int config_parse_memory(const char *s, long long *out)
{
    static const struct {
        const char *unit;
        long long mul;
    } units[] = {
        { "", 1 }, { "b", 1 },
        { "k", 1000 }, { "kb", 1024 },
        { "m", 1000 * 1000 }, { "mb", 1024 * 1024 },
        { "g", 1000 * 1000 * 1000 }, { "gb", 1024 * 1024 * 1024 },
    };
    long long n = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -1;      /* empty, sign, space: not a size */
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (n > (LLONG_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].unit) == 0) {
            if (n > LLONG_MAX / units[i].mul)
                return -1;
            *out = n * units[i].mul;
            return 0;
        }
    }
    return -1;
}
