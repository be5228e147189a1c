/*
 * config_rewrite: CONFIG REWRITE — the config file changed so that it gives the running options.
 *
 * The file is read line by line with the loader's rules (config.c): indentation and trailing spaces do
 * not count, ';' and '#' open a comment line, "[name]" a section, "name = value" an option, where a ';'
 * after a space starts an inline comment (inih's default) and one pair of quotes around the value is
 * removed. An option line is compared with the running value by parsing it with the option's own parser
 * and rendering both as CONFIG GET does (raw), so "100mb" and "104857600" are the same value and such a
 * line is left alone. Only lines whose value differs are written again, keeping their inline comment;
 * options the file lacks and whose running value is not the default go after the last option of their
 * section. [cache.NAME] sections are copied as they are: no command changes them.
 *
 * The text is built in memory (config_rewrite_text, which the unit tests call) and the file replaced in
 * one rename, so that a crash or a full disk leaves the old file or the new one, never half of each.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config_table.h"
#include "util/buf.h"
#include "util/check.h"
#include "util/mem.h"

#define RW_MAX_SECTIONS 8           /* config_sections[] has at most this many */

/* One line of the old text, as the loader sees it. */
typedef struct rw_line {
    const char *start;              /* the line as it was, without its '\n' */
    size_t len;
    const config_option_t *opt;     /* an option line of a known option outside [cache.NAME], or NULL */
    const char *comment;            /* its inline comment (" ; ..."), or NULL */
    size_t comment_len;
    int replace;                    /* its value differs from the running one */
} rw_line_t;

/* The running value of o as the file writes it: sizes with a unit where exact, the rest as CONFIG GET
 * shows it unredacted; quoted when the loader would otherwise change it (spaces at either end, or a
 * pair of quotes of its own). */
static void rw_value(buf_t *out, const config_t *cfg, const config_option_t *o)
{
    buf_t v;
    char mem[32];

    buf_init(&v);
    if (o->type == CONFIG_MEMORY) {
        config_format_memory(mem, sizeof(mem), *(const long long *)config_field(cfg, o));
        buf_append(&v, mem, strlen(mem) + 1);
    } else {
        config_render(&v, cfg, o, 1);
    }
    const char *s = v.data;
    size_t n = strlen(s);
    int quote = n > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]) || s[0] == ';' ||
                          (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]));
    if (quote)
        buf_printf(out, "\"%s\"", s);
    else
        buf_append(out, s, n);
    buf_deinit(&v);
}

/* "name = value" for o's running value, without a newline. */
static void rw_option_line(buf_t *out, const config_t *cfg, const config_option_t *o)
{
    buf_printf(out, "%s = ", o->name);
    rw_value(out, cfg, o);
}

/* Does value (as written in the file, inline comment removed) give o the value it has in cfg? scratch
 * is a config to parse into. */
static int rw_same(const config_t *cfg, config_t *scratch, const config_option_t *o, const char *value)
{
    char err[256];
    buf_t a, b;
    int same;

    if (config_set(scratch, o->name, value, err, sizeof(err)) < 0)
        return 0;
    buf_init(&a);
    buf_init(&b);
    config_render(&a, cfg, o, 1);
    config_render(&b, scratch, o, 1);
    same = strcmp(a.data, b.data) == 0;
    buf_deinit(&a);
    buf_deinit(&b);
    return same;
}

static int rw_section_index(const char *s, size_t n)
{
    for (size_t i = 0; i < config_nsections; i++)
        if (strlen(config_sections[i]) == n && strncasecmp(config_sections[i], s, n) == 0)
            return (int)i;
    return -1;
}

/*
 * Classify line l: a section header updates *section (-1 before any, -2 in a [cache.NAME] or unknown
 * one, else an index of config_sections); an option line of a known option that may stand there gets
 * opt and, compared with cfg, replace.
 */
static void rw_classify(rw_line_t *l, int first, int *section, const config_t *cfg, config_t *scratch)
{
    char text[1024];
    size_t n = l->len;

    if (n >= sizeof(text))
        return;     /* longer than the loader accepts: not an option it read */
    memcpy(text, l->start, n);
    text[n] = '\0';
    char *s = text;
    if (first && n >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;     /* the loader skips a UTF-8 byte order mark */
    while (isspace((unsigned char)*s))
        s++;
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        text[--n] = '\0';
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end != NULL) {
            int i = rw_section_index(s + 1, (size_t)(end - s - 1));
            *section = i >= 0 ? i : -2;
        }
        return;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL || eq == s || *section == -2)
        return;
    char *name_end = eq;
    while (name_end > s && isspace((unsigned char)name_end[-1]))
        name_end--;
    *name_end = '\0';
    const config_option_t *o = config_find(s);
    if (o == NULL || (*section >= 0 && strcasecmp(config_sections[*section], o->section) != 0))
        return;
    char *value = eq + 1;
    while (isspace((unsigned char)*value))
        value++;
    /* inih's inline comment: a ';' after a space */
    for (char *p = value; *p; p++) {
        if (*p == ';' && p > value && isspace((unsigned char)p[-1])) {
            char *c = p - 1;
            while (c > value && isspace((unsigned char)c[-1]))
                c--;
            l->comment = l->start + (c - text);
            l->comment_len = (size_t)(text + n - c);
            *c = '\0';
            break;
        }
    }
    l->opt = o;
    l->replace = !rw_same(cfg, scratch, o, value);
}

/* Is o's running value in cfg its default? */
static int rw_is_default(const config_t *cfg, const config_t *defaults, const config_option_t *o)
{
    buf_t a, b;

    buf_init(&a);
    buf_init(&b);
    config_render(&a, cfg, o, 1);
    config_render(&b, defaults, o, 1);
    int same = strcmp(a.data, b.data) == 0;
    buf_deinit(&a);
    buf_deinit(&b);
    return same;
}

void config_rewrite_text(const config_t *cfg, const char *old, size_t oldlen, buf_t *out)
{
    rw_line_t *lines = NULL;
    size_t nlines = 0, cap = 0;
    int in_file[CONFIG_MAX_OPTIONS] = { 0 };
    long after[RW_MAX_SECTIONS];    /* per section: the line new options go after; -1: no such section */
    config_t scratch, defaults;
    int section = -1;

    CHECK(config_nsections <= RW_MAX_SECTIONS);
    for (size_t i = 0; i < RW_MAX_SECTIONS; i++)
        after[i] = -1;
    config_init(&scratch);
    config_init(&defaults);
    for (size_t pos = 0; pos < oldlen;) {
        const char *nl = memchr(old + pos, '\n', oldlen - pos);
        size_t len = nl ? (size_t)(nl - (old + pos)) : oldlen - pos;
        if (nlines == cap) {
            cap = cap ? cap * 2 : 64;
            lines = mem_realloc(lines, cap * sizeof(*lines));
        }
        rw_line_t *l = &lines[nlines];
        memset(l, 0, sizeof(*l));
        l->start = old + pos;
        l->len = len;
        int was = section;
        rw_classify(l, nlines == 0, &section, cfg, &scratch);
        if (section >= 0 && section != was)
            after[section] = (long)nlines;      /* a header: new options at least after it */
        if (l->opt != NULL) {
            in_file[l->opt - config_options] = 1;
            if (section >= 0)
                after[section] = (long)nlines;
        }
        nlines++;
        pos += len + (nl != NULL);
    }
    /* the options to add, by section */
    buf_t add[RW_MAX_SECTIONS];
    for (size_t s = 0; s < config_nsections; s++)
        buf_init(&add[s]);
    for (size_t i = 0; i < config_noptions; i++) {
        const config_option_t *o = &config_options[i];
        if (in_file[i] || rw_is_default(cfg, &defaults, o))
            continue;
        int s = rw_section_index(o->section, strlen(o->section));
        rw_option_line(&add[s], cfg, o);
        buf_append(&add[s], "\n", 1);
    }
    for (size_t i = 0; i < nlines; i++) {
        const rw_line_t *l = &lines[i];
        int cr = l->len > 0 && l->start[l->len - 1] == '\r';
        if (l->replace) {
            rw_option_line(out, cfg, l->opt);
            if (l->comment != NULL)
                buf_append(out, l->comment, l->comment_len);
            buf_append(out, cr ? "\r\n" : "\n", cr ? 2 : 1);
        } else {
            buf_append(out, l->start, l->len);
            if (i + 1 < nlines || old[oldlen - 1] == '\n')
                buf_append(out, "\n", 1);
        }
        for (size_t s = 0; s < config_nsections; s++) {
            if (after[s] == (long)i && add[s].len > 0) {
                if (i + 1 == nlines && old[oldlen - 1] != '\n')
                    buf_append(out, "\n", 1);
                buf_append(out, add[s].data, add[s].len);
            }
        }
    }
    for (size_t s = 0; s < config_nsections; s++) {
        if (after[s] >= 0 || add[s].len == 0)
            continue;
        if (out->len > 0 && out->data[out->len - 1] != '\n')
            buf_append(out, "\n", 1);
        if (out->len > 0)
            buf_append(out, "\n", 1);
        buf_printf(out, "[%s]\n", config_sections[s]);
        buf_append(out, add[s].data, add[s].len);
    }
    for (size_t s = 0; s < config_nsections; s++)
        buf_deinit(&add[s]);
    mem_free(lines);
    config_deinit(&scratch);
    config_deinit(&defaults);
}

/* The whole file at path into b; 0, 1 if there is no such file, -1 with errno. */
static int rw_read(const char *path, buf_t *b)
{
    FILE *f = fopen(path, "r");
    char chunk[8192];
    size_t n;

    if (f == NULL)
        return errno == ENOENT ? 1 : -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(b, chunk, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Write n bytes of data to a new file next to path, then rename it over path. 0, or -1 with errno. */
static int rw_replace(const char *path, const char *data, size_t n, mode_t mode)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int len = slash ? snprintf(tmp, sizeof(tmp), "%.*s/.%s.rewrite-XXXXXX", (int)(slash - path), path, slash + 1)
                    : snprintf(tmp, sizeof(tmp), ".%s.rewrite-XXXXXX", path);
    if (len < 0 || (size_t)len >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* a new file of a name nobody could guess (O_EXCL): never one a link placed there points at */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out_unlink;
        done += (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
        goto out_unlink;
    if (close(fd) < 0) {
        fd = -1;
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto out_unlink;
    return 0;

out_unlink:;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

/*
 * Every option's line as the rewrite would write it must read back as the same value: the loader takes
 * lines of fewer than INI_MAX_LINE characters, and a ';' after a space starts a comment however the value
 * is quoted. 0, or -1 with err naming the first option that cannot be written (never its value).
 */
static int rw_writable(const config_t *cfg, char *err, size_t errlen)
{
    buf_t line;
    int rc = 0;

    buf_init(&line);
    for (size_t i = 0; i < config_noptions && rc == 0; i++) {
        buf_reset(&line);
        rw_option_line(&line, cfg, &config_options[i]);
        const char *v = line.data + strlen(config_options[i].name) + 3;
        size_t vlen = line.len - strlen(config_options[i].name) - 3;
        if (line.len >= INI_MAX_LINE) {
            snprintf(err, errlen, "the value of %s is too long for a line of the file (at most %d characters "
                     "with the name); file left unchanged", config_options[i].name, INI_MAX_LINE - 1);
            rc = -1;
        }
        for (size_t k = 1; k < vlen && rc == 0; k++)
            if (v[k] == ';' && isspace((unsigned char)v[k - 1])) {
                snprintf(err, errlen, "the value of %s holds a ';' after a space, which the file would read as a "
                         "comment; file left unchanged", config_options[i].name);
                rc = -1;
            }
    }
    buf_deinit(&line);
    return rc;
}

int config_rewrite(const config_t *cfg, const char *path, char *err, size_t errlen)
{
    char real[PATH_MAX];
    struct stat st;
    mode_t mode = 0644;
    buf_t old, out;
    int rc = -1;

    /* a link stays a link: the file it points to is the one replaced */
    if (realpath(path, real) != NULL)
        path = real;
    if (stat(path, &st) == 0)
        mode = st.st_mode & 07777;
    buf_init(&old);
    buf_init(&out);
    int r = rw_read(path, &old);
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (rw_writable(cfg, err, errlen) < 0)
        goto out;
    config_rewrite_text(cfg, old.data, old.len, &out);
    if (rw_replace(path, out.data ? out.data : "", out.len, mode) < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    buf_deinit(&old);
    buf_deinit(&out);
    return rc;
}
