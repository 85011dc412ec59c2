/*
 * loadgen.c - Remote Write 1.0 load generator for `make bench`.
 *
 *   loadgen --url URL --connections C --series-per-request N
 *           (--requests R | --samples TOTAL) [--rate SAMPLES_PER_S]
 *           [--targets T] [--token T] [--max-seconds S] [--timeout S]
 *           [--pool-mb MB] [--seed S] [--end-ms MS] [--shards K]
 *           [--dump FILE]
 *
 * Before the clock starts it builds every request body the run will send:
 * node-exporter-like series for T scrape targets (instance="10.0.X.Y:9100",
 * job="node", labels sorted by name, __name__ first), one sample per series,
 * encoded as a prometheus.WriteRequest by hand and snappy-compressed (block
 * format). Request i holds the N series at positions i*N .. i*N+N-1 of the
 * endless sequence "all series of all targets, round after round"; each
 * round is one 15 s scrape later (the last round ends at --end-ms, default
 * now), so every sample of a run is distinct and
 * no two bodies are equal (a receiver that drops resent batches must not be
 * able to drop ours). Only if the bodies would exceed --pool-mb are they
 * reused round-robin, with a warning on stderr.
 *
 * --shards K splits the series into K disjoint sets, as Prometheus' remote
 * write shards do (series idx goes to shard idx % K): request i belongs to
 * shard i % K and holds the next N series of that shard's own endless
 * sequence, round after round. The request count is rounded up to a
 * multiple of K. With --connections K (and no --rate), connection c sends
 * only shard c's requests, in order, each after the answer to the one
 * before: a shard-like sender. With another number of connections the
 * same bodies go out in the usual closed loop.
 *
 * Threads: C sender threads, each with its own libcurl easy handle (one
 * keep-alive connection). Without --rate a thread takes the next request
 * index from a shared counter as soon as its previous request is answered
 * (closed loop). With --rate the run follows a fixed schedule: request i is
 * due at start + i*N/rate and goes out on thread i%C (open loop); its
 * latency is measured from the time it was due, so a stalled receiver
 * shows up in the percentiles instead of silently slowing the schedule.
 *
 * --dump FILE writes the bodies to FILE instead of sending them (each a
 * little-endian u32 length, then the body; --url is not needed), for
 * bench/ingest_cost.
 *
 * Non-2xx answers and transport errors are counted as failed, never
 * retried. The last line on stdout is machine-readable:
 *   requests= ok= failed= samples_acked= seconds= samples_per_s= p50_ms=
 *   p90_ms= p99_ms= max_ms= body_bytes_avg=
 * Progress and warnings go to stderr.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#define SCRAPE_INTERVAL_MS 15000
#define MAX_LABELS 16
#define MAX_CONNECTIONS 1024

enum series_kind { KIND_COUNTER, KIND_GAUGE, KIND_CONST };
enum value_fmt { FMT_INT, FMT_FRAC2, FMT_FULL };

/* One series of one target: its encoded labels and how its value moves. */
struct series {
	uint8_t *labels;        /* owned; encoded Label messages, field 1 of TimeSeries */
	uint32_t labels_len;
	uint8_t kind;           /* enum series_kind */
	uint8_t fmt;            /* enum value_fmt */
	uint32_t target;        /* index of the scrape target */
	double base;            /* value at round 0 */
	double step;            /* counters: mean increase per scrape; gauges: relative swing */
};

struct catalog {
	struct series *series;  /* owned */
	size_t n, cap;
	uint32_t ntargets;
	int64_t *offset_ms;     /* owned; per target scrape offset within the interval */
};

struct body {
	char *data;             /* owned; snappy block */
	size_t len;
};

struct options {
	const char *url;
	const char *token;
	int connections;
	long series_per_request;
	long requests;
	long long samples;
	double rate;
	long targets;
	double max_seconds;
	long timeout_s;
	long pool_mb;
	uint64_t seed;
	int64_t end_ms;         /* timestamp of the last round; 0: now */
	long shards;            /* 0: no shards; else K disjoint series sets */
	const char *dump;       /* write the bodies here instead of sending */
};

struct run {
	const struct options *opt;
	const struct catalog *cat;
	struct body *bodies;    /* owned; npool entries */
	long npool;
	long nrequests;
	int64_t t0_ms;          /* timestamp of round 0 */
	double start;           /* monotonic seconds when sending starts */
	double deadline;        /* start + max_seconds, or 0 */
	atomic_long next;       /* closed loop: next request index */
	atomic_long gen_next;   /* body generation: next body index */
	double *latency_ms;     /* owned; per request, NAN if not sent or failed */
	atomic_long ok, failed, samples_acked;
	atomic_int errors_logged;
	double end;             /* monotonic seconds of the last answer */
	mtx_t end_lock;
};

struct worker {
	struct run *run;        /* ref */
	int id;
	double last_done;
};

/* ---- small helpers ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Uniform double in [0, 1) from a hash of a and b. */
static double unit(uint64_t a, uint64_t b)
{
	return (double)(splitmix64(a * 0x100000001b3ULL ^ splitmix64(b)) >> 11) / 9007199254740992.0;
}

/* ---- protobuf encoding (prompb.WriteRequest, written by hand) ---- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* Field 1/2 length-delimited strings of a Label, wrapped as TimeSeries field 1. */
static size_t label_encoded_len(const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	size_t inner = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;

	return 1 + varint_len(inner) + inner;
}

static uint8_t *put_label(uint8_t *p, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	size_t inner = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;

	*p++ = 0x0a;                    /* TimeSeries.labels */
	p = put_varint(p, inner);
	*p++ = 0x0a;                    /* Label.name */
	p = put_varint(p, nl);
	memcpy(p, name, nl);
	p += nl;
	*p++ = 0x12;                    /* Label.value */
	p = put_varint(p, vl);
	memcpy(p, value, vl);
	return p + vl;
}

/* Sample message: 1 double value (fixed64), 2 int64 timestamp (varint). */
static size_t sample_encoded_len(int64_t ts)
{
	return 1 + 8 + 1 + varint_len((uint64_t)ts);
}

static uint8_t *put_sample(uint8_t *p, double value, int64_t ts)
{
	uint64_t bits;

	memcpy(&bits, &value, sizeof bits);
	*p++ = 0x12;                    /* TimeSeries.samples */
	p = put_varint(p, sample_encoded_len(ts));
	*p++ = 0x09;                    /* Sample.value */
	p = put_fixed64(p, bits);
	*p++ = 0x10;                    /* Sample.timestamp */
	return put_varint(p, (uint64_t)ts);
}

/* ---- the series catalogue: node_exporter as Prometheus scrapes it ---- */

struct label_set {
	const char *name[MAX_LABELS];
	char value[MAX_LABELS][96];
	int n;
};

/* Adds a label; an empty value means no label, as Prometheus sends it. */
static void ls_add(struct label_set *ls, const char *name, const char *value)
{
	if (!value[0])
		return;
	if (ls->n == MAX_LABELS)
		die("too many labels");
	ls->name[ls->n] = name;
	snprintf(ls->value[ls->n], sizeof ls->value[0], "%s", value);
	ls->n++;
}

/*
 * Appends one series of target t: __name__ plus the extra label pairs in
 * `extra` (name, value, name, value, ..., NULL), instance and job; sorted
 * by name as Prometheus sends them.
 */
static void cat_add(struct catalog *cat, uint32_t t, const char *instance,
		    enum series_kind kind, enum value_fmt fmt, double base,
		    double step, const char *metric, const char *const *extra)
{
	struct label_set ls = { .n = 0 };
	struct series *s;
	size_t len = 0;
	uint8_t *p;

	ls_add(&ls, "__name__", metric);
	ls_add(&ls, "instance", instance);
	ls_add(&ls, "job", "node");
	for (int i = 0; extra && extra[i]; i += 2)
		ls_add(&ls, extra[i], extra[i + 1]);
	for (int i = 1; i < ls.n; i++) {        /* insertion sort by name */
		for (int j = i; j > 0 && strcmp(ls.name[j - 1], ls.name[j]) > 0; j--) {
			const char *tn = ls.name[j];
			char tv[sizeof ls.value[0]];

			memcpy(tv, ls.value[j], sizeof tv);
			ls.name[j] = ls.name[j - 1];
			memcpy(ls.value[j], ls.value[j - 1], sizeof tv);
			ls.name[j - 1] = tn;
			memcpy(ls.value[j - 1], tv, sizeof tv);
		}
	}
	for (int i = 0; i < ls.n; i++)
		len += label_encoded_len(ls.name[i], ls.value[i]);

	if (cat->n == cat->cap) {
		cat->cap = cat->cap ? cat->cap * 2 : 4096;
		cat->series = realloc(cat->series, cat->cap * sizeof *cat->series);
		if (!cat->series)
			die("out of memory");
	}
	s = &cat->series[cat->n++];
	s->labels = xmalloc(len);
	s->labels_len = (uint32_t)len;
	p = s->labels;
	for (int i = 0; i < ls.n; i++)
		p = put_label(p, ls.name[i], ls.value[i]);
	s->kind = (uint8_t)kind;
	s->fmt = (uint8_t)fmt;
	s->target = t;
	s->base = base;
	s->step = step;
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char *const cpu_modes[] = {
	"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"
};
static const char *const mem_fields[] = {
	"Active", "Active_anon", "Active_file", "AnonHugePages", "AnonPages",
	"Bounce", "Buffers", "Cached", "CommitLimit", "Committed_AS",
	"DirectMap1G", "DirectMap2M", "DirectMap4k", "Dirty", "FileHugePages",
	"FilePmdMapped", "HardwareCorrupted", "HugePages_Free", "HugePages_Rsvd",
	"HugePages_Surp", "HugePages_Total", "Hugepagesize", "Hugetlb", "Inactive",
	"Inactive_anon", "Inactive_file", "KReclaimable", "KernelStack", "Mapped",
	"MemAvailable", "MemFree", "MemTotal", "Mlocked", "NFS_Unstable",
	"PageTables", "Percpu", "SReclaimable", "SUnreclaim", "Shmem",
	"ShmemHugePages", "ShmemPmdMapped", "Slab", "SwapCached", "SwapFree",
	"SwapTotal", "Unevictable", "VmallocChunk", "VmallocTotal", "VmallocUsed",
	"Writeback", "WritebackTmp"
};
static const char *const netstat_fields[] = {
	"Icmp6_InErrors", "Icmp6_InMsgs", "Icmp6_OutMsgs", "Icmp_InErrors",
	"Icmp_InMsgs", "Icmp_OutMsgs", "Ip6_InOctets", "Ip6_OutOctets",
	"IpExt_InOctets", "IpExt_OutOctets", "Ip_Forwarding", "TcpExt_ListenDrops",
	"TcpExt_ListenOverflows", "TcpExt_SyncookiesFailed", "TcpExt_SyncookiesRecv",
	"TcpExt_SyncookiesSent", "TcpExt_TCPSynRetrans", "TcpExt_TCPTimeouts",
	"Tcp_ActiveOpens", "Tcp_CurrEstab", "Tcp_InErrs", "Tcp_InSegs",
	"Tcp_OutRsts", "Tcp_OutSegs", "Tcp_PassiveOpens", "Tcp_RetransSegs",
	"Udp6_InDatagrams", "Udp6_InErrors", "Udp6_NoPorts", "Udp6_OutDatagrams",
	"Udp6_RcvbufErrors", "Udp6_SndbufErrors", "UdpLite6_InErrors",
	"UdpLite_InErrors", "Udp_InDatagrams", "Udp_InErrors", "Udp_NoPorts",
	"Udp_OutDatagrams", "Udp_RcvbufErrors", "Udp_SndbufErrors"
};
static const char *const vmstat_fields[] = {
	"oom_kill", "pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout"
};
static const char *const collectors[] = {
	"arp", "bcache", "bonding", "btrfs", "conntrack", "cpu", "cpufreq",
	"diskstats", "dmi", "edac", "entropy", "fibrechannel", "filefd",
	"filesystem", "hwmon", "infiniband", "ipvs", "loadavg", "mdadm", "meminfo",
	"netclass", "netdev", "netstat", "nfs", "nfsd", "nvme", "os", "powersupplyclass",
	"pressure", "rapl", "schedstat", "selinux", "sockstat", "softnet", "stat",
	"tapestats", "textfile", "thermal_zone", "time", "timex", "udp_queues",
	"uname", "vmstat", "xfs", "zfs"
};
static const char *const gc_quantiles[] = { "0", "0.25", "0.5", "0.75", "1" };
static const char *const go_memstats[] = {
	"alloc_bytes", "alloc_bytes_total", "buck_hash_sys_bytes", "frees_total",
	"gc_sys_bytes", "heap_alloc_bytes", "heap_idle_bytes", "heap_inuse_bytes",
	"heap_objects", "heap_released_bytes", "heap_sys_bytes",
	"last_gc_time_seconds", "lookups_total", "mallocs_total",
	"mcache_inuse_bytes", "mcache_sys_bytes", "mspan_inuse_bytes",
	"mspan_sys_bytes", "next_gc_bytes", "other_sys_bytes", "stack_inuse_bytes",
	"stack_sys_bytes", "sys_bytes"
};

static void cat_add_target(struct catalog *cat, uint32_t t, uint64_t seed)
{
	char inst[32], cpu[12], buf[96];
	uint64_t h = splitmix64(seed ^ (t * 0x9e37ULL));
	int ncpu = 2 << (h % 4);                        /* 2, 4, 8 or 16 */
	int ndisk = 1 + (int)((h >> 8) % 3);
	int docker = (h >> 16) & 1;
	double mem = (double)(4ULL << ((h >> 20) % 4)) * 1073741824.0;
	double disk = (double)(50ULL << ((h >> 24) % 4)) * 1e9;
	double r;

	snprintf(inst, sizeof inst, "10.0.%u.%u:9100", t / 250, 1 + t % 250);

	for (int c = 0; c < ncpu; c++) {
		snprintf(cpu, sizeof cpu, "%d", c);
		for (size_t m = 0; m < sizeof cpu_modes / sizeof cpu_modes[0]; m++) {
			r = unit(h, (uint64_t)(c * 16 + (int)m));
			cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2,
				m == 0 ? 1e6 * (1 + r) : 1e4 * r,
				m == 0 ? 13.0 : m == 7 ? 1.4 : m == 6 ? 0.5 : 0.02 * r,
				"node_cpu_seconds_total", L("cpu", cpu, "mode", cpu_modes[m]));
		}
		cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2, 0, 0, "node_cpu_guest_seconds_total",
			L("cpu", cpu, "mode", "nice"));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2, 0, 0, "node_cpu_guest_seconds_total",
			L("cpu", cpu, "mode", "user"));
		cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 2.4e9, 0.3,
			"node_cpu_scaling_frequency_hertz", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2, 2e5 * (1 + unit(h, (uint64_t)c)), 1.7,
			"node_schedstat_running_seconds_total", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2, 1e4 * (1 + unit(h, (uint64_t)c + 99)), 0.2,
			"node_schedstat_waiting_seconds_total", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 3e8, 4000,
			"node_schedstat_timeslices_total", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 5e7, 900,
			"node_softnet_processed_total", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0,
			"node_softnet_dropped_total", L("cpu", cpu));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 12, 0.001,
			"node_softnet_times_squeezed_total", L("cpu", cpu));
	}

	{
		static const char *const devs[] = { "eth0", "eth1", "lo", "docker0" };
		static const char *const dir[] = { "receive", "transmit" };
		static const char *const what[] = { "bytes", "packets", "errs", "drop",
						     "fifo", "compressed" };
		int ndev = 3 + docker;

		for (int d = 0; d < ndev; d++) {
			for (int i = 0; i < 2; i++) {
				for (size_t w = 0; w < sizeof what / sizeof what[0]; w++) {
					snprintf(buf, sizeof buf, "node_network_%s_%s_total",
						 dir[i], what[w]);
					r = unit(h, (uint64_t)(1000 + d * 64 + i * 8 + (int)w));
					cat_add(cat, t, inst, KIND_COUNTER, FMT_INT,
						w == 0 ? 1e12 * r : w == 1 ? 1e9 * r : 10 * r,
						w == 0 ? 4e6 * r : w == 1 ? 3e3 * r : 0.0,
						buf, L("device", devs[d]));
				}
			}
			cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 1e5, 1,
				"node_network_receive_multicast_total", L("device", devs[d]));
			cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0,
				"node_network_transmit_colls_total", L("device", devs[d]));
			cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0,
				"node_network_up", L("device", devs[d]));
			cat_add(cat, t, inst, KIND_CONST, FMT_INT, d == 2 ? 65536 : 1500, 0,
				"node_network_mtu_bytes", L("device", devs[d]));
			cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1.25e9, 0,
				"node_network_speed_bytes", L("device", devs[d]));
			snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x",
				 (unsigned)(t >> 8) & 0xff, (unsigned)t & 0xff, (unsigned)d);
			cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_network_info",
				L("address", d == 2 ? "00:00:00:00:00:00" : buf,
				  "broadcast", "ff:ff:ff:ff:ff:ff", "device", devs[d],
				  "duplex", d == 2 ? "" : "full", "ifalias", "",
				  "operstate", d == 2 ? "unknown" : "up"));
		}
	}

	{
		static const char *const fsname[] = { "avail_bytes", "free_bytes", "size_bytes",
						      "files", "files_free", "readonly",
						      "device_error" };
		static const char *const mnt[][3] = {
			{ "/dev/sda1", "ext4", "/" },
			{ "/dev/sda15", "vfat", "/boot/efi" },
			{ "tmpfs", "tmpfs", "/run" },
			{ "tmpfs", "tmpfs", "/run/lock" },
			{ "tmpfs", "tmpfs", "/run/user/1000" },
			{ "/dev/sdb1", "xfs", "/var/lib/docker" },
			{ "overlay", "overlay", "/var/lib/docker/overlay2/3f1c9e0a7b2d/merged" },
		};
		int nmnt = 5 + docker * 2;

		for (int m = 0; m < nmnt; m++) {
			for (size_t f = 0; f < sizeof fsname / sizeof fsname[0]; f++) {
				snprintf(buf, sizeof buf, "node_filesystem_%s", fsname[f]);
				r = unit(h, (uint64_t)(2000 + m * 16 + (int)f));
				cat_add(cat, t, inst, f <= 1 || f == 4 ? KIND_GAUGE : KIND_CONST,
					FMT_INT,
					f <= 2 ? disk * (f == 2 ? 1 : 0.2 + 0.6 * r) :
					f <= 4 ? 6.5e6 * (f == 3 ? 1 : 0.5 + 0.4 * r) : 0,
					f <= 1 || f == 4 ? 0.002 : 0, buf,
					L("device", mnt[m][0], "fstype", mnt[m][1],
					  "mountpoint", mnt[m][2]));
			}
		}
	}

	{
		static const char *const dname[] = { "sda", "sdb", "nvme0n1" };
		static const char *const dm[] = {
			"reads_completed_total", "reads_merged_total", "read_bytes_total",
			"read_time_seconds_total", "writes_completed_total",
			"writes_merged_total", "written_bytes_total",
			"write_time_seconds_total", "io_now", "io_time_seconds_total",
			"io_time_weighted_seconds_total", "discards_completed_total",
			"discards_merged_total", "discarded_sectors_total",
			"discard_time_seconds_total", "flush_requests_total",
			"flush_requests_time_seconds_total"
		};

		for (int d = 0; d < ndisk; d++) {
			for (size_t m = 0; m < sizeof dm / sizeof dm[0]; m++) {
				snprintf(buf, sizeof buf, "node_disk_%s", dm[m]);
				r = unit(h, (uint64_t)(3000 + d * 32 + (int)m));
				cat_add(cat, t, inst, m == 8 ? KIND_GAUGE : KIND_COUNTER,
					strstr(dm[m], "seconds") ? FMT_FULL : FMT_INT,
					strstr(dm[m], "bytes") ? 1e11 * r : 1e6 * r,
					m == 8 ? 0.5 : strstr(dm[m], "bytes") ? 2e6 * r : 40 * r,
					buf, L("device", dname[d]));
			}
		}
		cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_disk_info",
			L("device", dname[0], "major", "8", "minor", "0", "model",
			  "QEMU HARDDISK", "path", "pci-0000:00:05.0-scsi-0:0:0:0",
			  "revision", "2.5+"));
	}

	for (size_t m = 0; m < sizeof mem_fields / sizeof mem_fields[0]; m++) {
		snprintf(buf, sizeof buf, "node_memory_%s_bytes", mem_fields[m]);
		r = unit(h, (uint64_t)(4000 + m));
		cat_add(cat, t, inst, r < 0.3 ? KIND_CONST : KIND_GAUGE, FMT_INT,
			(double)((uint64_t)(mem * r) & ~4095ULL), 0.02, buf, NULL);
	}
	for (size_t m = 0; m < sizeof vmstat_fields / sizeof vmstat_fields[0]; m++) {
		snprintf(buf, sizeof buf, "node_vmstat_%s", vmstat_fields[m]);
		r = unit(h, (uint64_t)(5000 + m));
		cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 1e9 * r, m ? 2e4 * r : 0, buf, NULL);
	}
	for (size_t m = 0; m < sizeof netstat_fields / sizeof netstat_fields[0]; m++) {
		snprintf(buf, sizeof buf, "node_netstat_%s", netstat_fields[m]);
		r = unit(h, (uint64_t)(6000 + m));
		cat_add(cat, t, inst, strstr(netstat_fields[m], "Curr") ? KIND_GAUGE : KIND_COUNTER,
			FMT_INT, 1e8 * r, 500 * r, buf, NULL);
	}
	{
		static const char *const sock[] = {
			"FRAG6_inuse", "FRAG6_memory", "FRAG_inuse", "FRAG_memory",
			"RAW6_inuse", "RAW_inuse", "TCP6_inuse", "TCP_alloc", "TCP_inuse",
			"TCP_mem", "TCP_mem_bytes", "TCP_orphan", "TCP_tw", "UDP6_inuse",
			"UDPLITE6_inuse", "UDPLITE_inuse", "UDP_inuse", "UDP_mem",
			"UDP_mem_bytes", "sockets_used"
		};

		for (size_t m = 0; m < sizeof sock / sizeof sock[0]; m++) {
			snprintf(buf, sizeof buf, "node_sockstat_%s", sock[m]);
			cat_add(cat, t, inst, KIND_GAUGE, FMT_INT,
				floor(2000 * unit(h, (uint64_t)(7000 + m))), 0.1, buf, NULL);
		}
	}
	{
		static const char *const psi[] = {
			"node_pressure_cpu_waiting_seconds_total",
			"node_pressure_io_stalled_seconds_total",
			"node_pressure_io_waiting_seconds_total",
			"node_pressure_memory_stalled_seconds_total",
			"node_pressure_memory_waiting_seconds_total"
		};

		for (size_t m = 0; m < sizeof psi / sizeof psi[0]; m++)
			cat_add(cat, t, inst, KIND_COUNTER, FMT_FULL,
				5e3 * unit(h, (uint64_t)(7100 + m)), 0.05, psi[m], NULL);
	}
	cat_add(cat, t, inst, KIND_GAUGE, FMT_FRAC2, 0.4 * ncpu, 0.3, "node_load1", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_FRAC2, 0.4 * ncpu, 0.15, "node_load5", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_FRAC2, 0.4 * ncpu, 0.05, "node_load15", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 1e10, 9e4, "node_context_switches_total", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 6e9, 5e4, "node_intr_total", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 3e7, 40, "node_forks_total", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1.7e9 + 1e6 * unit(h, 8000), 0,
		"node_boot_time_seconds", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_FULL, 1.7e9, 15, "node_time_seconds", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 3, 0.6, "node_procs_running", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 1, 0.9, "node_procs_blocked", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 256, 0.01, "node_entropy_available_bits", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 3000, 0.05, "node_filefd_allocated", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 9223372036854775807.0, 0,
		"node_filefd_maximum", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_FULL, 1.2e-5, 0.3, "node_timex_offset_seconds", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_timex_sync_status", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 43 + 10 * unit(h, 8100), 0.05,
		"node_hwmon_temp_celsius", L("chip", "platform_coretemp_0", "sensor", "temp1"));
	snprintf(buf, sizeof buf, "node-%u", t);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_uname_info",
		L("domainname", "(none)", "machine", "x86_64", "nodename", buf,
		  "release", "6.1.0-18-amd64", "sysname", "Linux",
		  "version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"));
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_os_info",
		L("build_id", "", "id", "debian", "id_like", "", "image_id", "",
		  "name", "Debian GNU/Linux", "pretty_name", "Debian GNU/Linux 12 (bookworm)",
		  "version", "12 (bookworm)", "version_codename", "bookworm",
		  "version_id", "12"));
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "node_exporter_build_info",
		L("branch", "HEAD", "goarch", "amd64", "goos", "linux",
		  "goversion", "go1.21.4", "revision", "7333465abf9efba81876303bb57e6fadb946041b",
		  "tags", "netgo osusergo static_build", "version", "1.7.0"));
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 0, 0, "node_textfile_scrape_error", NULL);

	for (size_t m = 0; m < sizeof collectors / sizeof collectors[0]; m++) {
		cat_add(cat, t, inst, KIND_GAUGE, FMT_FULL, 0.002 * (1 + unit(h, 9000 + m)), 0.4,
			"node_scrape_collector_duration_seconds", L("collector", collectors[m]));
		cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0,
			"node_scrape_collector_success", L("collector", collectors[m]));
	}
	for (size_t m = 0; m < sizeof gc_quantiles / sizeof gc_quantiles[0]; m++)
		cat_add(cat, t, inst, KIND_GAUGE, FMT_FULL, 3e-5 * (double)(m + 1), 0.3,
			"go_gc_duration_seconds", L("quantile", gc_quantiles[m]));
	cat_add(cat, t, inst, KIND_COUNTER, FMT_FULL, 12.5, 0.0003, "go_gc_duration_seconds_sum", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 2e5, 1.5, "go_gc_duration_seconds_count", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 9, 0.2, "go_goroutines", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "go_info", L("version", "go1.21.4"));
	for (size_t m = 0; m < sizeof go_memstats / sizeof go_memstats[0]; m++) {
		snprintf(buf, sizeof buf, "go_memstats_%s", go_memstats[m]);
		r = unit(h, (uint64_t)(9500 + m));
		if (strstr(go_memstats[m], "total"))
			cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 1e10 * r, 2e5 * r, buf, NULL);
		else
			cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 1e7 * r, 0.1, buf, NULL);
	}
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 7, 0, "go_threads", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_FRAC2, 3e3 * unit(h, 9900), 0.02,
		"process_cpu_seconds_total", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1048576, 0, "process_max_fds", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 10, 0.1, "process_open_fds", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 2.4e7, 0.05, "process_resident_memory_bytes", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_FRAC2, 1.7e9 + 1e6 * unit(h, 9901), 0,
		"process_start_time_seconds", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 7.4e8, 0, "process_virtual_memory_bytes", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1.8e19, 0, "process_virtual_memory_max_bytes", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0, "promhttp_metric_handler_errors_total",
		L("cause", "encoding"));
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0, "promhttp_metric_handler_errors_total",
		L("cause", "gathering"));
	cat_add(cat, t, inst, KIND_GAUGE, FMT_INT, 1, 0, "promhttp_metric_handler_requests_in_flight", NULL);
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 1e5, 1, "promhttp_metric_handler_requests_total",
		L("code", "200"));
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0, "promhttp_metric_handler_requests_total",
		L("code", "500"));
	cat_add(cat, t, inst, KIND_COUNTER, FMT_INT, 0, 0, "promhttp_metric_handler_requests_total",
		L("code", "503"));

	/* Series Prometheus adds to every scrape. */
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 1, 0, "up", NULL);
	cat_add(cat, t, inst, KIND_GAUGE, FMT_FULL, 0.021, 0.3, "scrape_duration_seconds", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 900, 0, "scrape_samples_scraped", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 900, 0, "scrape_samples_post_metric_relabeling", NULL);
	cat_add(cat, t, inst, KIND_CONST, FMT_INT, 0, 0, "scrape_series_added", NULL);
}

static void cat_build(struct catalog *cat, uint32_t ntargets, uint64_t seed)
{
	memset(cat, 0, sizeof *cat);
	cat->ntargets = ntargets;
	cat->offset_ms = xmalloc(ntargets * sizeof *cat->offset_ms);
	for (uint32_t t = 0; t < ntargets; t++) {
		cat->offset_ms[t] = (int64_t)(splitmix64(seed + t) % SCRAPE_INTERVAL_MS);
		cat_add_target(cat, t, seed);
	}
}

static void cat_free(struct catalog *cat)
{
	for (size_t i = 0; i < cat->n; i++)
		free(cat->series[i].labels);
	free(cat->series);
	free(cat->offset_ms);
}

/* The value series s reports at scrape `round`. */
static double series_value(const struct series *s, uint64_t idx, uint64_t round)
{
	double u = unit(idx, round), v;

	switch (s->kind) {
	case KIND_COUNTER:
		/* base + step*(round + u): never decreases from one round to the next */
		v = s->base + s->step * ((double)round + u);
		break;
	case KIND_GAUGE:
		v = s->base * (1.0 + s->step * (2.0 * u - 1.0));
		break;
	default:
		return s->base;
	}
	switch (s->fmt) {
	case FMT_INT:
		return floor(v);
	case FMT_FRAC2:
		return floor(v * 100.0) / 100.0;
	default:
		return v;
	}
}

/* ---- request bodies ---- */

/*
 * Encodes and compresses body i (series positions i*N .. i*N+N-1) into
 * out. raw and comp are scratch buffers large enough for one request.
 */
static void body_build(const struct run *run, long i, uint8_t *raw, char *comp,
		       size_t comp_cap, struct body *out)
{
	const struct catalog *cat = run->cat;
	uint64_t n = (uint64_t)run->opt->series_per_request;
	uint8_t *p = raw;
	size_t clen = comp_cap;

	uint64_t nshards = run->opt->shards > 0 ? (uint64_t)run->opt->shards : 1;
	uint64_t shard = (uint64_t)i % nshards, j = (uint64_t)i / nshards;
	/* shard's series: idx = shard, shard + K, ... below cat->n */
	uint64_t ns = (cat->n - shard + nshards - 1) / nshards;

	for (uint64_t k = 0; k < n; k++) {
		uint64_t pos = j * n + k;
		uint64_t idx = (pos % ns) * nshards + shard, round = pos / ns;
		const struct series *s = &cat->series[idx];
		int64_t ts = run->t0_ms + (int64_t)round * SCRAPE_INTERVAL_MS +
			     cat->offset_ms[s->target] +
			     (int64_t)(splitmix64(s->target * 7919ULL + round) % 3);
		size_t slen = sample_encoded_len(ts);
		size_t tslen = s->labels_len + 1 + varint_len(slen) + slen;

		*p++ = 0x0a;                    /* WriteRequest.timeseries */
		p = put_varint(p, tslen);
		memcpy(p, s->labels, s->labels_len);
		p += s->labels_len;
		p = put_sample(p, series_value(s, idx, round), ts);
	}
	if (snappy_compress((const char *)raw, (size_t)(p - raw), comp, &clen) != SNAPPY_OK)
		die("snappy_compress failed");
	out->data = xmalloc(clen);
	memcpy(out->data, comp, clen);
	out->len = clen;
}

static int gen_thread(void *arg)
{
	struct run *run = arg;
	size_t raw_cap = 0, comp_cap;
	uint8_t *raw;
	char *comp;
	long i;

	for (size_t k = 0; k < run->cat->n; k++)
		if (run->cat->series[k].labels_len > raw_cap)
			raw_cap = run->cat->series[k].labels_len;
	raw_cap = (raw_cap + 32) * (size_t)run->opt->series_per_request;
	comp_cap = snappy_max_compressed_length(raw_cap);
	raw = xmalloc(raw_cap);
	comp = xmalloc(comp_cap);
	while ((i = atomic_fetch_add(&run->gen_next, 1)) < run->npool)
		body_build(run, i, raw, comp, comp_cap, &run->bodies[i]);
	free(raw);
	free(comp);
	return 0;
}

/*
 * Builds the pool: one body per request, unless that would pass pool_mb,
 * in which case as many as fit (estimated from the first body).
 */
static void pool_build(struct run *run)
{
	long gen_threads = sysconf(_SC_NPROCESSORS_ONLN);
	thrd_t th[64];
	struct body first;
	size_t raw_cap = 0, comp_cap;
	uint8_t *raw;
	char *comp;
	double budget = (double)run->opt->pool_mb * 1048576.0;

	for (size_t k = 0; k < run->cat->n; k++)
		if (run->cat->series[k].labels_len > raw_cap)
			raw_cap = run->cat->series[k].labels_len;
	raw_cap = (raw_cap + 32) * (size_t)run->opt->series_per_request;
	comp_cap = snappy_max_compressed_length(raw_cap);
	raw = xmalloc(raw_cap);
	comp = xmalloc(comp_cap);
	body_build(run, 0, raw, comp, comp_cap, &first);
	free(raw);
	free(comp);

	run->npool = run->nrequests;
	if ((double)first.len * 1.1 * (double)run->npool > budget) {
		run->npool = (long)(budget / ((double)first.len * 1.1));
		if (run->npool < 1)
			run->npool = 1;
		fprintf(stderr, "loadgen: warning: %ld bodies do not fit in --pool-mb %ld; "
			"reusing %ld distinct bodies (samples repeat)\n",
			run->nrequests, run->opt->pool_mb, run->npool);
	}
	run->bodies = xmalloc((size_t)run->npool * sizeof *run->bodies);
	run->bodies[0] = first;
	atomic_store(&run->gen_next, 1);
	if (gen_threads < 1)
		gen_threads = 1;
	if (gen_threads > 64)
		gen_threads = 64;
	for (long t = 0; t < gen_threads; t++)
		if (thrd_create(&th[t], gen_thread, run) != thrd_success)
			die("thrd_create failed");
	for (long t = 0; t < gen_threads; t++)
		thrd_join(th[t], NULL);
}

/* ---- senders ---- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static CURL *sender_handle(const struct options *opt, struct curl_slist **headers)
{
	CURL *h = curl_easy_init();
	char auth[512];

	if (!h)
		die("curl_easy_init failed");
	*headers = NULL;
	*headers = curl_slist_append(*headers, "Content-Type: application/x-protobuf");
	*headers = curl_slist_append(*headers, "Content-Encoding: snappy");
	*headers = curl_slist_append(*headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
	*headers = curl_slist_append(*headers, "Expect:");
	if (opt->token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", opt->token);
		*headers = curl_slist_append(*headers, auth);
	}
	curl_easy_setopt(h, CURLOPT_URL, opt->url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "Prometheus/2.42.0");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, opt->timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	return h;
}

/* Sends request i; records its latency from `due`. Returns 0 ok, -1 failed. */
static int send_one(struct worker *w, CURL *h, long i, double due)
{
	struct run *run = w->run;
	const struct body *b = &run->bodies[i % run->npool];
	long code = 0;
	CURLcode rc;
	double done;

	curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
	rc = curl_easy_perform(h);
	done = now_s();
	w->last_done = done;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		run->latency_ms[i] = (done - due) * 1000.0;
		atomic_fetch_add(&run->ok, 1);
		atomic_fetch_add(&run->samples_acked, run->opt->series_per_request);
		return 0;
	}
	atomic_fetch_add(&run->failed, 1);
	if (atomic_fetch_add(&run->errors_logged, 1) < 5) {
		if (rc != CURLE_OK)
			fprintf(stderr, "loadgen: request %ld: %s\n", i, curl_easy_strerror(rc));
		else
			fprintf(stderr, "loadgen: request %ld: HTTP %ld\n", i, code);
	}
	return -1;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int sender_thread(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	const struct options *opt = run->opt;
	struct curl_slist *headers;
	CURL *h = sender_handle(opt, &headers);
	long i;

	if (opt->rate > 0) {
		double gap = (double)opt->series_per_request / opt->rate;

		for (i = w->id; i < run->nrequests; i += opt->connections) {
			double due = run->start + (double)i * gap;

			if (run->deadline > 0 && due >= run->deadline)
				break;
			if (due > now_s())
				sleep_until(due);
			send_one(w, h, i, due);
		}
	} else if (opt->shards == opt->connections) {
		/* one shard-like sender: its own series, one request at a time */
		for (i = w->id; i < run->nrequests; i += opt->connections) {
			if (run->deadline > 0 && now_s() >= run->deadline)
				break;
			send_one(w, h, i, now_s());
		}
	} else {
		while ((i = atomic_fetch_add(&run->next, 1)) < run->nrequests) {
			double t = now_s();

			if (run->deadline > 0 && t >= run->deadline)
				break;
			send_one(w, h, i, t);
		}
	}
	mtx_lock(&run->end_lock);
	if (w->last_done > run->end)
		run->end = w->last_done;
	mtx_unlock(&run->end_lock);
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	return 0;
}

/* ---- results ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double percentile(const double *sorted, long n, double q)
{
	long k;

	if (n == 0)
		return 0;
	k = (long)ceil(q * (double)n) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return sorted[k];
}

static void report(struct run *run)
{
	long n = 0, sent;
	double *lat = xmalloc((size_t)run->nrequests * sizeof *lat);
	double secs = run->end > run->start ? run->end - run->start : 0;
	long ok = atomic_load(&run->ok), failed = atomic_load(&run->failed);
	long long acked = atomic_load(&run->samples_acked);
	double bytes = 0;

	for (long i = 0; i < run->nrequests; i++)
		if (!isnan(run->latency_ms[i]))
			lat[n++] = run->latency_ms[i];
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	for (long i = 0; i < run->npool; i++)
		bytes += (double)run->bodies[i].len;
	sent = ok + failed;
	printf("requests=%ld ok=%ld failed=%ld samples_acked=%lld seconds=%.3f "
	       "samples_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "body_bytes_avg=%.0f\n",
	       sent, ok, failed, acked, secs, secs > 0 ? (double)acked / secs : 0.0,
	       percentile(lat, n, 0.50), percentile(lat, n, 0.90),
	       percentile(lat, n, 0.99), n ? lat[n - 1] : 0.0,
	       bytes / (double)run->npool);
	fflush(stdout);
	free(lat);
}

/* ---- main ---- */

/* Writes the pool's bodies to path: a little-endian u32 length, then the
 * body, each. */
static void dump_bodies(const struct run *run, const char *path)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	for (long i = 0; i < run->npool; i++) {
		uint32_t n = (uint32_t)run->bodies[i].len;
		uint8_t le[4] = { (uint8_t)n, (uint8_t)(n >> 8),
				  (uint8_t)(n >> 16), (uint8_t)(n >> 24) };

		if (fwrite(le, 1, 4, f) != 4 ||
		    fwrite(run->bodies[i].data, 1, n, f) != n)
			die("%s: write failed", path);
	}
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

static void usage(void)
{
	fputs("usage: loadgen --url URL --connections C --series-per-request N\n"
	      "               (--requests R | --samples TOTAL) [--rate SAMPLES_PER_S]\n"
	      "               [--targets T] [--token TOKEN] [--max-seconds S]\n"
	      "               [--timeout S] [--pool-mb MB] [--seed S] [--end-ms MS]\n"
	      "               [--shards K] [--dump FILE]\n",
	      stderr);
	exit(2);
}

static double parse_num(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "connections", required_argument, NULL, 'c' },
		{ "series-per-request", required_argument, NULL, 'n' },
		{ "requests", required_argument, NULL, 'r' },
		{ "samples", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'R' },
		{ "targets", required_argument, NULL, 't' },
		{ "token", required_argument, NULL, 'k' },
		{ "max-seconds", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "pool-mb", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 'S' },
		{ "end-ms", required_argument, NULL, 'e' },
		{ "shards", required_argument, NULL, 'K' },
		{ "dump", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct options opt = {
		.connections = 8, .series_per_request = 500, .targets = 100,
		.timeout_s = 60, .pool_mb = 2048, .seed = 1,
	};
	struct catalog cat;
	struct run run;
	struct worker *workers;
	thrd_t *th;
	double gen_start;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': opt.url = optarg; break;
		case 'c': opt.connections = (int)parse_num(optarg, "--connections"); break;
		case 'n': opt.series_per_request = (long)parse_num(optarg, "--series-per-request"); break;
		case 'r': opt.requests = (long)parse_num(optarg, "--requests"); break;
		case 's': opt.samples = (long long)parse_num(optarg, "--samples"); break;
		case 'R': opt.rate = parse_num(optarg, "--rate"); break;
		case 't': opt.targets = (long)parse_num(optarg, "--targets"); break;
		case 'k': opt.token = optarg; break;
		case 'm': opt.max_seconds = parse_num(optarg, "--max-seconds"); break;
		case 'T': opt.timeout_s = (long)parse_num(optarg, "--timeout"); break;
		case 'p': opt.pool_mb = (long)parse_num(optarg, "--pool-mb"); break;
		case 'S': opt.seed = (uint64_t)parse_num(optarg, "--seed"); break;
		case 'e': opt.end_ms = (int64_t)parse_num(optarg, "--end-ms"); break;
		case 'K': opt.shards = (long)parse_num(optarg, "--shards"); break;
		case 'D': opt.dump = optarg; break;
		default: usage();
		}
	}
	if ((!opt.url && !opt.dump) || optind != argc)
		usage();
	if (opt.connections < 1 || opt.connections > MAX_CONNECTIONS)
		die("--connections must be 1..%d", MAX_CONNECTIONS);
	if (opt.series_per_request < 1 || opt.series_per_request > 1000000)
		die("--series-per-request must be 1..1000000");
	if (opt.samples > 0 && opt.requests == 0)
		opt.requests = (long)((opt.samples + opt.series_per_request - 1) /
				      opt.series_per_request);
	if (opt.requests < 1)
		die("give --requests or --samples");
	if (opt.targets < 1 || opt.targets > 62500)
		die("--targets must be 1..62500");
	if (opt.pool_mb < 1)
		die("--pool-mb must be >= 1");
	if (opt.shards < 0 || opt.shards > MAX_CONNECTIONS)
		die("--shards must be 0..%d", MAX_CONNECTIONS);
	if (opt.shards > 0)
		opt.requests = (opt.requests + opt.shards - 1) / opt.shards * opt.shards;

	memset(&run, 0, sizeof run);
	run.opt = &opt;
	run.nrequests = opt.requests;
	gen_start = now_s();
	cat_build(&cat, (uint32_t)opt.targets, opt.seed);
	if (cat.n < (size_t)opt.series_per_request)
		fprintf(stderr, "loadgen: warning: %zu series in %ld targets, fewer than "
			"--series-per-request; a request repeats series\n", cat.n, opt.targets);
	run.cat = &cat;
	if (opt.shards > 0 && cat.n / (size_t)opt.shards < (size_t)opt.series_per_request)
		fprintf(stderr, "loadgen: warning: a shard has fewer series than "
			"--series-per-request; a request repeats series\n");
	{
		/* round 0 lies in the past so that the last round ends about now */
		uint64_t k = opt.shards > 0 ? (uint64_t)opt.shards : 1;
		uint64_t rounds = (uint64_t)opt.requests * (uint64_t)opt.series_per_request /
				  (cat.n / k * k) + 1;
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		if (opt.end_ms == 0)
			opt.end_ms = (int64_t)ts.tv_sec * 1000;
		run.t0_ms = opt.end_ms - (int64_t)rounds * SCRAPE_INTERVAL_MS;
		run.t0_ms -= run.t0_ms % SCRAPE_INTERVAL_MS;
	}
	pool_build(&run);
	fprintf(stderr, "loadgen: %zu series in %ld targets, %ld requests of %ld series, "
		"%ld distinct bodies (first %zu bytes), built in %.1fs\n",
		cat.n, opt.targets, run.nrequests, opt.series_per_request, run.npool,
		run.bodies[0].len, now_s() - gen_start);
	if (opt.dump != NULL) {
		dump_bodies(&run, opt.dump);
		return 0;
	}

	run.latency_ms = xmalloc((size_t)run.nrequests * sizeof *run.latency_ms);
	for (long i = 0; i < run.nrequests; i++)
		run.latency_ms[i] = NAN;
	if (mtx_init(&run.end_lock, mtx_plain) != thrd_success)
		die("mtx_init failed");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		die("curl_global_init failed");

	workers = xmalloc((size_t)opt.connections * sizeof *workers);
	th = xmalloc((size_t)opt.connections * sizeof *th);
	run.start = now_s();
	run.end = run.start;
	run.deadline = opt.max_seconds > 0 ? run.start + opt.max_seconds : 0;
	for (int i = 0; i < opt.connections; i++) {
		workers[i] = (struct worker){ .run = &run, .id = i, .last_done = run.start };
		if (thrd_create(&th[i], sender_thread, &workers[i]) != thrd_success)
			die("thrd_create failed");
	}
	for (int i = 0; i < opt.connections; i++)
		thrd_join(th[i], NULL);

	report(&run);
	curl_global_cleanup();
	for (long i = 0; i < run.npool; i++)
		free(run.bodies[i].data);
	free(run.bodies);
	free(run.latency_ms);
	free(workers);
	free(th);
	mtx_destroy(&run.end_lock);
	cat_free(&cat);
	return atomic_load(&run.ok) > 0 ? 0 : 1;
}
