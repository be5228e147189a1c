/*
 * cmd/stats: per-command counters (INFO commandstats), latency percentiles (INFO latencystats), and the
 * slow log (SLOWLOG), with redis's field names so that existing dashboards and exporters read them.
 *
 * Time is the command's execution on the loop thread, measured around its handler, as redis measures
 * it; an upstream's round trip is in INFO upstream.
 *
 * Also the instantaneous rates of INFO stats (instantaneous_ops_per_sec, instantaneous_input_kbps,
 * instantaneous_output_kbps) and used_memory_peak, sampled as redis samples them: one rate per 100 ms
 * period, the average of the last 16. Redis takes a sample from its timer; here a sample is taken when a
 * command runs or INFO asks (cmd_stats_tick), and a gap of several periods without either counts as that
 * many periods, the first with what was counted since the last sample and the others with nothing — the
 * figures a timer gives, since what is counted happens when commands run (inst_push).
 *
 * And the error replies (INFO stats' total_error_replies, INFO errorstats, commandstats' failed_calls and
 * rejected_calls), counted as Redis 7.0 counts them: every error reply a client is sent, by the first word
 * of its text, whoever made it (this daemon, or the upstream whose reply is relayed). net shows each reply
 * as it is released (req_t.reply, cmd_req_recycle_cb); a reply of a command that ran (cmd_call) counts as
 * that command's failed call, one refused before running (arity, NOAUTH, OOM) was counted as rejected
 * when it was refused. The members of a transaction are commands of their own, with replies of their own.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/session.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* Latency histogram: 4 buckets per power of two of microseconds, up to 2^40 us. */
#define HIST_SUB 4
#define HIST_BUCKETS (41 * HIST_SUB)

typedef struct cmd_stat {
    const char *name;           /* as INFO shows it ("get", "client|list"): a table's string, the key */
    unsigned long long calls;
    unsigned long long usec;
    unsigned long long rejected;        /* refused before running (wrong arity, NOAUTH, OOM) */
    unsigned long long failed;          /* ran, and replied an error */
    unsigned hist[HIST_BUCKETS];
} cmd_stat_t;

#define STAT_SLOTS 512
static cmd_stat_t *stats[STAT_SLOTS];

static cmd_stat_t *stat_for(const char *name)
{
    unsigned h = (unsigned)(((uintptr_t)name >> 3) * 2654435761u) % STAT_SLOTS;
    for (unsigned i = 0; i < STAT_SLOTS; i++, h = (h + 1) % STAT_SLOTS) {
        if (stats[h] == NULL) {
            stats[h] = mem_calloc(1, sizeof(cmd_stat_t));
            stats[h]->name = name;
            return stats[h];
        }
        if (stats[h]->name == name)
            return stats[h];
    }
    return NULL;        /* more commands than slots: cannot happen with the table's size */
}

/* ---- error replies ------------------------------------------------------------------------------- */

/*
 * Counts by error code, Redis's server.errors. Redis 7.0 keeps every distinct code it sees, and a relayed
 * upstream's scripts can make up any number of them (redis.error_reply): kept bounded as later Redis
 * versions bound theirs (7.2.5 and 7.4), at 128 codes, after which the table is emptied and shows only
 * ERRORSTATS_DISABLED until CONFIG RESETSTAT. total_error_replies counts on.
 */
#define ERR_CODES_MAX 128
#define ERR_CODE_LEN 32                 /* Redis looks for the code's end in the first 32 bytes */

typedef struct err_code {
    char name[ERR_CODE_LEN];            /* without the '-' (at most 30 bytes), NUL-terminated */
    size_t len;
    unsigned long long count;
} err_code_t;

static err_code_t err_codes[ERR_CODES_MAX];
static int err_ncodes;
static int err_disabled;                /* the table overflowed: ERRORSTATS_DISABLED until a reset */
static unsigned long long err_total;    /* total_error_replies */

static void err_code_count(const char *name, size_t len)
{
    if (err_disabled)
        return;
    for (int i = 0; i < err_ncodes; i++) {
        if (err_codes[i].len == len && memcmp(err_codes[i].name, name, len) == 0) {
            err_codes[i].count++;
            return;
        }
    }
    if (err_ncodes == ERR_CODES_MAX) {
        log_warn("errorstats stopped counting by error code: more than %d codes (relayed scripts' error_reply?); "
                 "CONFIG RESETSTAT starts again", ERR_CODES_MAX);
        err_ncodes = 0;
        err_code_count("ERRORSTATS_DISABLED", 19);
        err_disabled = 1;
        return;
    }
    err_code_t *e = &err_codes[err_ncodes++];
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->len = len;
    e->count = 1;
}

/*
 * One error reply: '-' and its text up to CRLF, or a RESP3 blob error ('!', relayed from an upstream).
 * The code is the text's first word when a space ends it within Redis's 32 bytes (counting the '-'),
 * "ERR" otherwise (afterErrorReply).
 */
static void err_reply_count(bytes_t reply)
{
    const char *p = reply.ptr, *end = reply.ptr + reply.len;

    err_total++;
    if (p[0] == '!') {                  /* !<len>\r\n<text>\r\n: the text as if it followed a '-' */
        const char *nl = memchr(p, '\n', reply.len);
        if (nl == NULL)
            return;
        p = nl;
    }
    const char *cr = memchr(p, '\r', (size_t)(end - p));
    size_t len = (size_t)((cr != NULL ? cr : end) - p);
    const char *sp = memchr(p, ' ', len < ERR_CODE_LEN ? len : ERR_CODE_LEN);
    if (sp != NULL)
        err_code_count(p + 1, (size_t)(sp - p - 1));
    else
        err_code_count("ERR", 3);
}

void cmd_stats_reply_error(const char *name, bytes_t reply)
{
    err_reply_count(reply);
    if (name != NULL) {
        cmd_stat_t *s = stat_for(name);
        if (s != NULL)
            s->failed++;
    }
}

unsigned long long cmd_stats_error_replies(void)
{
    return err_total;
}

static int err_code_cmp(const void *a, const void *b)
{
    const err_code_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* INFO errorstats: errorstat_<CODE>:count=N, in Redis's order (its radix tree's: bytewise), with the
 * characters that would break INFO's format ('#', ':', CR, LF) shown as '_', as Redis shows them. */
void cmd_stats_errors_info(buf_t *out)
{
    err_code_t sorted[ERR_CODES_MAX];

    memcpy(sorted, err_codes, (size_t)err_ncodes * sizeof(err_code_t));
    qsort(sorted, (size_t)err_ncodes, sizeof(err_code_t), err_code_cmp);
    for (int i = 0; i < err_ncodes; i++) {
        for (size_t k = 0; k < sorted[i].len; k++)
            if (strchr("#:\r\n", sorted[i].name[k]) != NULL && sorted[i].name[k] != '\0')
                sorted[i].name[k] = '_';
        buf_printf(out, "errorstat_%.*s:count=%llu\r\n", (int)sorted[i].len, sorted[i].name, sorted[i].count);
    }
}

/* ---- instantaneous rates ------------------------------------------------------------------------- */

#define INST_SAMPLES 16         /* redis's STATS_METRIC_SAMPLES */
#define INST_PERIOD_MS 100      /* redis samples in serverCron every 100 ms */

typedef struct inst_metric {
    unsigned long long last;    /* the counter at the last sample */
    double samples[INST_SAMPLES];  /* per second, ring */
    int idx;
} inst_metric_t;

enum { INST_OPS, INST_NET_IN, INST_NET_OUT, INST_N };

static inst_metric_t inst[INST_N];
static long long inst_last_ms;          /* 0: no sample yet */
static size_t mem_peak;

/*
 * A sample after elapsed_ms without one. Every command takes a sample once a period has passed, so what
 * was counted since the last one happened in the period right after it (the command taking the sample
 * aside): that period gets the rate a timer would have measured, the periods after it none.
 */
static void inst_push(inst_metric_t *m, unsigned long long now_value, long long elapsed_ms)
{
    long long periods = elapsed_ms / INST_PERIOD_MS;
    double rate = (double)(now_value - m->last) * 1000.0 / (double)(periods > 1 ? INST_PERIOD_MS : elapsed_ms);

    if (now_value < m->last)            /* CONFIG RESETSTAT zeroed the counter */
        rate = 0;
    for (long long i = 0; i < periods && i <= INST_SAMPLES; i++) {
        m->samples[m->idx] = i == 0 ? rate : 0;
        m->idx = (m->idx + 1) % INST_SAMPLES;
    }
    m->last = now_value;
}

void cmd_stats_tick(void)
{
    long long now = clock_ms();
    const conn_stats_t *ns = conn_stats(cmd_ctx.srv);
    unsigned long long v[INST_N] = { cmd_ctx.stats.total_commands, ns->net_input_bytes, ns->net_output_bytes };

    if (inst_last_ms != 0 && now - inst_last_ms < INST_PERIOD_MS)
        return;
    for (int i = 0; i < INST_N; i++) {
        if (inst_last_ms == 0)
            inst[i].last = v[i];
        else
            inst_push(&inst[i], v[i], now - inst_last_ms);
    }
    inst_last_ms = now;
    backend_stats_t bs;
    backend_stats(cmd_ctx.backend, &bs, NULL, 0);
    if (bs.used_memory > mem_peak)
        mem_peak = bs.used_memory;
}

static double inst_avg(const inst_metric_t *m)
{
    double sum = 0;
    for (int i = 0; i < INST_SAMPLES; i++)
        sum += m->samples[i];
    return sum / INST_SAMPLES;
}

void cmd_stats_instant(cmd_stats_instant_t *out)
{
    cmd_stats_tick();
    out->ops_per_sec = (long long)(inst_avg(&inst[INST_OPS]) + 0.5);
    out->input_kbps = inst_avg(&inst[INST_NET_IN]) / 1024;
    out->output_kbps = inst_avg(&inst[INST_NET_OUT]) / 1024;
    out->used_memory_peak = mem_peak;
}

static int hist_bucket(long long us)
{
    if (us < 1)
        return 0;
    int e = 63 - __builtin_clzll((unsigned long long)us);         /* 2^e <= us < 2^(e+1) */
    int sub = e >= 2 ? (int)((us >> (e - 2)) & 3) : (int)(us & ((1 << e) - 1)) * (HIST_SUB >> e);
    int b = e * HIST_SUB + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The upper bound of bucket b, in microseconds. */
static double hist_upper(int b)
{
    int e = b / HIST_SUB, sub = b % HIST_SUB;
    return (double)(1ULL << e) * (1.0 + (sub + 1) / (double)HIST_SUB);
}

typedef struct slowlog_entry {
    long long id;
    long long time_s;
    long long usec;
    int argc;                   /* arguments kept (at most 32, the last saying how many more) */
    bytes_t *argv;              /* one block with the bytes */
    char addr[64];
    char name[64];
} slowlog_entry_t;

static slowlog_entry_t *slowlog;        /* ring of slowlog_max entries, newest at slowlog_head - 1 */
static int slowlog_cap, slowlog_len, slowlog_head;
static long long slowlog_next_id;

static void slowlog_entry_free(slowlog_entry_t *e)
{
    mem_free(e->argv);
    e->argv = NULL;
}

/*
 * Arguments the slow log never keeps, as redis's redactClientCommandArgument: every argument of AUTH,
 * the user and password after HELLO's AUTH, the password after MIGRATE's AUTH and the user and password
 * after its AUTH2 (MIGRATE reaches an upstream by passthrough), the value of a secret option in CONFIG SET
 * (requirepass, tls-key-file-pass...). A redacted argument reads "(redacted)".
 * Marks those among the first nmark in mark[].
 */
#define SLOWLOG_ARGS_MAX 32
static void slowlog_redact(int argc, const bytes_t *argv, char *mark, int nmark)
{
    char redact[SLOWLOG_ARGS_MAX + 2] = { 0 };  /* the arguments past it are not kept: no need to mark */

    if (argc > SLOWLOG_ARGS_MAX + 2)
        argc = SLOWLOG_ARGS_MAX + 2;
    if (bytes_eq_nocase(argv[0], "auth")) {
        for (int i = 1; i < argc; i++)
            redact[i] = 1;
    } else if (bytes_eq_nocase(argv[0], "hello")) {
        for (int i = 2; i < argc; i++) {
            if (bytes_eq_nocase(argv[i], "auth") && i + 2 < argc) {
                redact[i + 1] = redact[i + 2] = 1;
                i += 2;
            } else if (bytes_eq_nocase(argv[i], "setname") && i + 1 < argc) {
                i++;
            }
        }
    } else if (bytes_eq_nocase(argv[0], "config") && argc >= 4 && bytes_eq_nocase(argv[1], "set")) {
        for (int i = 2; i + 1 < argc; i += 2) {
            char name[64];
            if (argv[i].len >= sizeof(name))
                continue;
            memcpy(name, argv[i].ptr, argv[i].len);
            name[argv[i].len] = '\0';
            for (char *p = name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            redact[i + 1] = (char)config_is_secret(name);
        }
    } else if (bytes_eq_nocase(argv[0], "migrate")) {
        for (int i = 6; i < argc; i++) {
            if (bytes_eq_nocase(argv[i], "auth") && i + 1 < argc) {
                redact[++i] = 1;
            } else if (bytes_eq_nocase(argv[i], "auth2") && i + 2 < argc) {
                redact[i + 1] = redact[i + 2] = 1;
                i += 2;
            } else if (bytes_eq_nocase(argv[i], "keys")) {
                break;
            }
        }
    }
    memcpy(mark, redact, (size_t)nmark);
}

static void slowlog_push(const client_t *c, int argc, bytes_t *argv, long long usec)
{
    static const bytes_t redacted = { "(redacted)", 10 };
    int max = cmd_ctx.cfg->slowlog_max_len;

    if (max <= 0)
        return;
    if (slowlog_cap != max) {           /* the length changed (reload, CONFIG SET): keep the newest */
        slowlog_entry_t *ring = mem_calloc((size_t)max, sizeof(*ring));
        int keep = slowlog_len < max ? slowlog_len : max;
        for (int i = 0; i < slowlog_len; i++) {
            slowlog_entry_t *e = &slowlog[(slowlog_head - 1 - i + 2 * slowlog_cap) % slowlog_cap];
            if (i < keep)
                ring[keep - 1 - i] = *e;        /* oldest kept first */
            else
                slowlog_entry_free(e);
        }
        mem_free(slowlog);
        slowlog = ring;
        slowlog_cap = max;
        slowlog_len = keep;
        slowlog_head = keep % max;
    }
    slowlog_entry_t *e = &slowlog[slowlog_head];
    slowlog_entry_free(e);
    int keep = argc > SLOWLOG_ARGS_MAX ? SLOWLOG_ARGS_MAX : argc;
    size_t bytes = 0;
    char more[64], redact[SLOWLOG_ARGS_MAX];
    slowlog_redact(argc, argv, redact, keep);
    for (int i = 0; i < keep; i++)
        bytes += redact[i] ? redacted.len : argv[i].len > 128 ? 128 + 32 : argv[i].len;
    e->argv = mem_alloc((size_t)keep * sizeof(bytes_t) + bytes + sizeof(more));
    char *p = (char *)(e->argv + keep);
    for (int i = 0; i < keep; i++) {
        const bytes_t *a = redact[i] ? &redacted : &argv[i];
        if (i == SLOWLOG_ARGS_MAX - 1 && argc > SLOWLOG_ARGS_MAX) {
            int n = snprintf(more, sizeof(more), "... (%d more arguments)", argc - 31);
            memcpy(p, more, (size_t)n);
            e->argv[i] = (bytes_t){ p, (size_t)n };
            p += n;
        } else if (a->len > 128) {
            int n = snprintf(p, 128 + 32, "%.128s... (%zu more bytes)", a->ptr, a->len - 128);
            e->argv[i] = (bytes_t){ p, (size_t)n };
            p += n;
        } else {
            memcpy(p, a->ptr, a->len);
            e->argv[i] = (bytes_t){ p, a->len };
            p += a->len;
        }
    }
    e->argc = keep;
    e->id = slowlog_next_id++;
    e->time_s = clock_ms() / 1000;
    e->usec = usec;
    snprintf(e->addr, sizeof(e->addr), "%s", c->addr);
    snprintf(e->name, sizeof(e->name), "%s", cmd_session(c)->name ? cmd_session(c)->name : "");
    slowlog_head = (slowlog_head + 1) % slowlog_cap;
    if (slowlog_len < slowlog_cap)
        slowlog_len++;
}

void cmd_stats_record(const client_t *c, const char *name, int argc, bytes_t *argv, long long usec)
{
    cmd_stat_t *s = stat_for(name);

    if (s != NULL) {
        s->calls++;
        s->usec += (unsigned long long)usec;
        s->hist[hist_bucket(usec)]++;
    }
    cmd_stats_tick();
    long long slower = cmd_ctx.cfg->slowlog_log_slower_than;
    if (slower >= 0 && usec >= slower)
        slowlog_push(c, argc, argv, usec);
}

void cmd_stats_rejected(const char *name)
{
    cmd_stat_t *s = stat_for(name);
    if (s != NULL)
        s->rejected++;
}

void cmd_stats_reset(void)
{
    memset(inst, 0, sizeof(inst));
    inst_last_ms = 0;
    mem_peak = 0;
    for (int i = 0; i < STAT_SLOTS; i++)
        if (stats[i] != NULL)
            memset(&stats[i]->calls, 0, sizeof(*stats[i]) - offsetof(cmd_stat_t, calls));
    err_ncodes = 0;
    err_disabled = 0;
    err_total = 0;
}

/* "get" or "client|list" as redis names them in INFO. */
void cmd_stats_info(buf_t *out, int latency)
{
    for (int i = 0; i < STAT_SLOTS; i++) {
        const cmd_stat_t *s = stats[i];
        if (s == NULL || (s->calls == 0 && s->rejected == 0 && s->failed == 0))
            continue;
        if (!latency) {
            buf_printf(out, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu\r\n",
                       s->name, s->calls, s->usec, s->calls ? (double)s->usec / (double)s->calls : 0.0,
                       s->rejected, s->failed);
            continue;
        }
        if (s->calls == 0)
            continue;
        static const double pct[] = { 50.0, 99.0, 99.9 };
        double v[3];
        for (int k = 0; k < 3; k++) {
            unsigned long long want = (unsigned long long)((double)s->calls * pct[k] / 100.0 + 0.999999);
            unsigned long long seen = 0;
            v[k] = hist_upper(HIST_BUCKETS - 1);
            for (int b = 0; b < HIST_BUCKETS; b++) {
                seen += s->hist[b];
                if (seen >= want) {
                    v[k] = hist_upper(b);
                    break;
                }
            }
        }
        buf_printf(out, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n", s->name, v[0], v[1], v[2]);
    }
}

/* Per-command calls and a latency histogram, as Prometheus reads them (seconds, cumulative buckets). */
void cmd_stats_prometheus(buf_t *out)
{
    buf_append_str(out, "# HELP cachetoryd_command_duration_seconds Time a command took on the loop thread.\n"
                        "# TYPE cachetoryd_command_duration_seconds histogram\n");
    for (int i = 0; i < STAT_SLOTS; i++) {
        const cmd_stat_t *s = stats[i];
        if (s == NULL || s->calls == 0)
            continue;
        unsigned long long cum = 0;
        int last = 0;
        for (int b = 0; b < HIST_BUCKETS; b++)
            if (s->hist[b])
                last = b;
        for (int b = 0; b <= last; b++) {
            cum += s->hist[b];
            if (b % HIST_SUB == HIST_SUB - 1 || b == last)
                buf_printf(out, "cachetoryd_command_duration_seconds_bucket{cmd=\"%s\",le=\"%.9g\"} %llu\n",
                           s->name, hist_upper(b) / 1e6, cum);
        }
        buf_printf(out, "cachetoryd_command_duration_seconds_bucket{cmd=\"%s\",le=\"+Inf\"} %llu\n", s->name, s->calls);
        buf_printf(out, "cachetoryd_command_duration_seconds_sum{cmd=\"%s\"} %.9g\n", s->name, (double)s->usec / 1e6);
        buf_printf(out, "cachetoryd_command_duration_seconds_count{cmd=\"%s\"} %llu\n", s->name, s->calls);
    }
}

/* SLOWLOG GET [count] | LEN | RESET | HELP */
int cmd_slowlog(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);

    if (bytes_eq_nocase(argv[1], "len")) {
        reply_int(out, slowlog_len);
    } else if (bytes_eq_nocase(argv[1], "reset")) {
        for (int i = 0; i < slowlog_cap; i++)
            slowlog_entry_free(&slowlog[i]);
        slowlog_len = slowlog_head = 0;
        REPLY_OK(out);
    } else if (bytes_eq_nocase(argv[1], "get")) {
        long long n = 10;
        if (argc == 3 && (cmd_parse_ll(argv[2], &n) < 0 || n < -1)) {
            reply_error(out, "ERR count should be greater than or equal to -1");
            return CMD_DONE;
        }
        if (n == -1 || n > slowlog_len)
            n = slowlog_len;
        reply_array(out, (size_t)n);
        for (long long i = 0; i < n; i++) {
            const slowlog_entry_t *e = &slowlog[(slowlog_head - 1 - i + 2 * slowlog_cap) % slowlog_cap];
            reply_array(out, 6);
            reply_int(out, e->id);
            reply_int(out, e->time_s);
            reply_int(out, e->usec);
            reply_array(out, (size_t)e->argc);
            for (int k = 0; k < e->argc; k++)
                reply_bulk(out, e->argv[k].ptr, e->argv[k].len);
            reply_bulk_str(out, e->addr);
            reply_bulk_str(out, e->name);
        }
    } else {
        static const char *const help[] = {
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "LEN", "    Return the length of the slowlog.",
            "RESET", "    Reset the slowlog.",
        };
        CMD_REPLY_HELP(out, help);
    }
    return CMD_DONE;
}
