// memexercise: the test and demo workload of membalancer.
//
// A process (tree) with known hot and cold memory. Each process maps one
// anonymous region (2 MiB aligned, fenced by PROT_NONE guard gaps so it is one
// line of /proc/PID/numa_maps), populates it with one write per page, reports
// what it touched as one JSON line, then its worker threads sweep the hot range
// until the duration ends or SIGTERM/SIGINT arrives. See docs/memexercise.md.
//
// Deliberately self-contained: no libnuma (mbind is a raw syscall), links with
// -pthread only and works as a static binary in a minimal initramfs.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MEMEXERCISE_VERSION
#define MEMEXERCISE_VERSION "0.1.0"
#endif

namespace {

constexpr uint64_t kTwoMiB = 2ull << 20;
constexpr uint64_t kGuard = kTwoMiB;  // PROT_NONE gap on each side of a region
constexpr long kMaxThreads = 1024;
constexpr long kMaxProcesses = 1024;
constexpr long kMaxNode = 1023;
constexpr size_t kThreadStack = 1ull << 20;

// Kernel ABI (linux/mempolicy.h), spelled out so that no libnuma header is needed.
constexpr int kMpolPreferred = 1;
constexpr int kMpolBind = 2;

enum class Pattern { Seq, Random };
enum class Thp { Default, On, Off };
// --fault: what a process of the last level does once --fault-after exists.
enum class Fault { None, Exit, Exec, ThreadExec, Munmap };

struct Options {
    uint64_t size = 64ull << 20;
    uint64_t child_size = 0;  // 0: same as --size
    bool hot_offset_set = false, hot_size_set = false;
    uint64_t hot_offset = 0, hot_size = 0;
    bool no_cold_touch = false;
    bool touch_once = false;
    double duration = 10.0;
    double sweep_period = 0;  // seconds per sweep of the hot range; 0 = as fast as possible
    long threads = 1;
    std::vector<int> pin_cpus;
    Pattern pattern = Pattern::Seq;
    uint64_t stride = 64;
    bool stride_set = false;
    bool per_page = false;
    bool write = false;
    uint64_t seed = 1;
    long bind_node = -1, cpu_node = -1, preferred_node = -1;
    Thp thp = Thp::Default;
    long children = -1, chain = -1;  // -1: not given
    std::string spawn_after, wait_before_touch, report, ready_file;
    Fault fault = Fault::None;
    std::string fault_after;

    long fanout = 0, levels = 0;  // derived process tree shape
};

Options g_opt;
long g_page = 4096;
int g_report_fd = -1;
cpu_set_t g_node_cpus;  // --cpu-node's CPUs
bool g_have_node_cpus = false;

// ---- messages -------------------------------------------------------------------

[[noreturn]] void bad_input(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void bad_input(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "memexercise: %s\n", buf);
    exit(2);
}

void message(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void message(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "memexercise[%d]: %s\n", (int)getpid(), buf);
}

// ---- parsing ----------------------------------------------------------------------

bool parse_u64(const char* s, uint64_t& out) {
    if (!s || !(*s >= '0' && *s <= '9')) return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    out = v;
    return true;
}

// "64M", "4096", "1g", "2MiB", "512KB": binary multiples.
bool parse_size(const char* s, uint64_t& out) {
    if (!s || !(*s >= '0' && *s <= '9')) return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; ++end; break;
    case 'm': case 'M': shift = 20; ++end; break;
    case 'g': case 'G': shift = 30; ++end; break;
    case 't': case 'T': shift = 40; ++end; break;
    default: break;
    }
    if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
    if (*end) return false;
    if (shift && v > (UINT64_MAX >> shift)) return false;
    out = (uint64_t)v << shift;
    return true;
}

uint64_t opt_size(const char* opt, const char* arg, bool allow_zero) {
    uint64_t v;
    if (!parse_size(arg, v)) bad_input("%s: invalid size '%s' (want N, NK, NM, NG or NT)", opt, arg);
    if (!allow_zero && v == 0) bad_input("%s: size must be greater than 0", opt);
    if (v > (1ull << 46)) bad_input("%s: size '%s' is too large", opt, arg);
    return v;
}

long opt_long(const char* opt, const char* arg, long lo, long hi) {
    uint64_t v;
    if (!parse_u64(arg, v) || v > (uint64_t)hi || (long)v < lo)
        bad_input("%s: invalid value '%s' (want an integer from %ld to %ld)", opt, arg, lo, hi);
    return (long)v;
}

// Seconds as a float, at most `hi`; zero allowed only with allow_zero.
double opt_seconds(const char* opt, const char* arg, bool allow_zero, double hi) {
    char* end = nullptr;
    errno = 0;
    double d = strtod(arg, &end);
    if (!*arg || errno || *end || !std::isfinite(d) || d < 0 || (!allow_zero && d == 0) || d > hi)
        bad_input("%s: invalid %s '%s' (want seconds %s 0)", opt, allow_zero ? "duration" : "period", arg,
                  allow_zero ? ">=" : ">");
    return d;
}

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}. Returns false on syntax error.
bool parse_cpu_list(const std::string& s, std::vector<int>& out) {
    out.clear();
    size_t i = 0;
    auto number = [&](long& v) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
        v = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (s[i++] - '0');
            if (v >= CPU_SETSIZE) return false;
        }
        return true;
    };
    while (i < s.size()) {
        long a, b;
        if (!number(a)) return false;
        b = a;
        if (i < s.size() && s[i] == '-') {
            ++i;
            if (!number(b) || b < a) return false;
        }
        for (long c = a; c <= b; ++c) out.push_back((int)c);
        if (i < s.size()) {
            if (s[i] != ',') return false;
            ++i;
            if (i == s.size()) return false;
        }
    }
    return !out.empty();
}

bool read_file(const std::string& path, std::string& out) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    out.clear();
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, (size_t)n);
    close(fd);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return n == 0;
}

bool node_exists(long node) {
    struct stat st;
    if (stat("/sys/devices/system/node", &st) != 0) return true;  // no sysfs: let mbind decide
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%ld", node);
    return stat(path, &st) == 0;
}

void usage() {
    printf(
        "Usage: memexercise [OPTIONS]\n"
        "Test and demo workload for membalancer: a process (tree) with known hot and\n"
        "cold memory. Each process maps one anonymous region, writes every page of it\n"
        "once, appends one JSON line to --report, then its threads sweep the hot range\n"
        "until --duration ends or SIGTERM/SIGINT arrives.\n"
        "\n"
        "Memory:\n"
        "  --size SIZE              region size per process (K/M/G/T suffixes; default 64M)\n"
        "  --child-size SIZE        region size of descendants (default: --size)\n"
        "  --hot-offset SIZE        start of the hot range in the region (default 0)\n"
        "  --hot-size SIZE          length of the hot range (default: 1/8 of the region)\n"
        "  --no-cold-touch          do not touch the rest of the region (cold part)\n"
        "  --touch-once             write every page of the region exactly once, then idle\n"
        "  --thp on|off|default     madvise MADV_HUGEPAGE / MADV_NOHUGEPAGE (default: leave)\n"
        "Access:\n"
        "  --duration SECONDS       run time of the tree (float; default 10; 0 = until signal)\n"
        "  --threads N              worker threads per process (default 1)\n"
        "  --pin-cpus LIST          pin worker i to CPU LIST[i %% len] (e.g. 0-3,8)\n"
        "  --pattern seq|random     hot sweep order (default seq; random = xorshift)\n"
        "  --seed N                 seed of the random pattern (default 1)\n"
        "  --stride BYTES           distance between accesses of a sweep (default 64)\n"
        "  --per-page               one access per page (stride = page size)\n"
        "  --write                  sweeps write instead of read\n"
        "  --sweep-period SECONDS   pace each thread's sweep of the hot range to take\n"
        "                           SECONDS (float; seq pattern; default: no pacing)\n"
        "NUMA:\n"
        "  --bind-node N            mbind the region to node N (MPOL_BIND) before touching\n"
        "  --preferred-node N       mbind the region with MPOL_PREFERRED node N\n"
        "  --cpu-node N             run all threads on node N's CPUs\n"
        "Process tree:\n"
        "  --children N             each process forks N children (default 1 with --chain)\n"
        "  --chain DEPTH            DEPTH levels of descendants below the first process\n"
        "                           (default 1 with --children)\n"
        "  --spawn-after FILE       after touching, wait until FILE exists before forking\n"
        "  --wait-before-touch FILE wait until FILE exists before touching anything\n"
        "Fault injection (the processes of the last level of the tree):\n"
        "  --fault exit|exec|thread-exec|munmap\n"
        "                           once --fault-after exists: exit at once, exec a\n"
        "                           memexercise with a 4 KiB region (thread-exec: the\n"
        "                           first worker thread execs it, taking the main\n"
        "                           thread's id), or unmap the region and idle (munmap\n"
        "                           needs --touch-once)\n"
        "  --fault-after FILE       when to do it (after the report line)\n"
        "Reporting:\n"
        "  --report FILE            append one JSON line per process ('-' = stdout)\n"
        "  --ready-file FILE        create FILE once every process of the tree reported\n"
        "  -h, --help               this text\n"
        "  -V, --version            print the version\n"
        "\n"
        "Bad input: one line on stderr, exit 2. A failing process: exit 1.\n");
}

enum OptId {
    O_SIZE = 256, O_CHILD_SIZE, O_HOT_OFFSET, O_HOT_SIZE, O_NO_COLD, O_TOUCH_ONCE, O_DURATION,
    O_THREADS, O_PIN, O_PATTERN, O_SEED, O_STRIDE, O_PER_PAGE, O_WRITE, O_BIND, O_PREF, O_CPUNODE,
    O_THP, O_CHILDREN, O_CHAIN, O_SPAWN_AFTER, O_WAIT_BEFORE, O_REPORT, O_READY, O_FAULT, O_FAULT_AFTER,
    O_SWEEP_PERIOD,
};

void parse_args(int argc, char** argv) {
    static const option longopts[] = {
        {"size", required_argument, nullptr, O_SIZE},
        {"child-size", required_argument, nullptr, O_CHILD_SIZE},
        {"hot-offset", required_argument, nullptr, O_HOT_OFFSET},
        {"hot-size", required_argument, nullptr, O_HOT_SIZE},
        {"no-cold-touch", no_argument, nullptr, O_NO_COLD},
        {"touch-once", no_argument, nullptr, O_TOUCH_ONCE},
        {"duration", required_argument, nullptr, O_DURATION},
        {"threads", required_argument, nullptr, O_THREADS},
        {"pin-cpus", required_argument, nullptr, O_PIN},
        {"pattern", required_argument, nullptr, O_PATTERN},
        {"seed", required_argument, nullptr, O_SEED},
        {"stride", required_argument, nullptr, O_STRIDE},
        {"per-page", no_argument, nullptr, O_PER_PAGE},
        {"sweep-period", required_argument, nullptr, O_SWEEP_PERIOD},
        {"write", no_argument, nullptr, O_WRITE},
        {"bind-node", required_argument, nullptr, O_BIND},
        {"preferred-node", required_argument, nullptr, O_PREF},
        {"cpu-node", required_argument, nullptr, O_CPUNODE},
        {"thp", required_argument, nullptr, O_THP},
        {"children", required_argument, nullptr, O_CHILDREN},
        {"chain", required_argument, nullptr, O_CHAIN},
        {"spawn-after", required_argument, nullptr, O_SPAWN_AFTER},
        {"wait-before-touch", required_argument, nullptr, O_WAIT_BEFORE},
        {"report", required_argument, nullptr, O_REPORT},
        {"ready-file", required_argument, nullptr, O_READY},
        {"fault", required_argument, nullptr, O_FAULT},
        {"fault-after", required_argument, nullptr, O_FAULT_AFTER},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    Options& o = g_opt;
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(argc, argv, ":hV", longopts, &idx)) != -1) {
        const char* name = (c >= 256) ? longopts[idx].name : "";
        std::string dashed = std::string("--") + name;
        const char* opt = dashed.c_str();
        switch (c) {
        case 'h': usage(); exit(0);
        case 'V': printf("memexercise %s\n", MEMEXERCISE_VERSION); exit(0);
        case O_SIZE: o.size = opt_size(opt, optarg, false); break;
        case O_CHILD_SIZE: o.child_size = opt_size(opt, optarg, false); break;
        case O_HOT_OFFSET: o.hot_offset = opt_size(opt, optarg, true); o.hot_offset_set = true; break;
        case O_HOT_SIZE: o.hot_size = opt_size(opt, optarg, true); o.hot_size_set = true; break;
        case O_NO_COLD: o.no_cold_touch = true; break;
        case O_TOUCH_ONCE: o.touch_once = true; break;
        case O_DURATION: o.duration = opt_seconds(opt, optarg, true, 1e9); break;
        case O_SWEEP_PERIOD: o.sweep_period = opt_seconds(opt, optarg, false, 1e6); break;
        case O_THREADS: o.threads = opt_long(opt, optarg, 1, kMaxThreads); break;
        case O_PIN:
            if (!parse_cpu_list(optarg, o.pin_cpus))
                bad_input("%s: invalid CPU list '%s' (want e.g. 0-3,8)", opt, optarg);
            break;
        case O_PATTERN:
            if (!strcmp(optarg, "seq")) o.pattern = Pattern::Seq;
            else if (!strcmp(optarg, "random")) o.pattern = Pattern::Random;
            else bad_input("%s: invalid pattern '%s' (want seq or random)", opt, optarg);
            break;
        case O_SEED:
            if (!parse_u64(optarg, o.seed)) bad_input("%s: invalid seed '%s'", opt, optarg);
            break;
        case O_STRIDE: o.stride = opt_size(opt, optarg, false); o.stride_set = true; break;
        case O_PER_PAGE: o.per_page = true; break;
        case O_WRITE: o.write = true; break;
        case O_BIND: o.bind_node = opt_long(opt, optarg, 0, kMaxNode); break;
        case O_PREF: o.preferred_node = opt_long(opt, optarg, 0, kMaxNode); break;
        case O_CPUNODE: o.cpu_node = opt_long(opt, optarg, 0, kMaxNode); break;
        case O_THP:
            if (!strcmp(optarg, "on")) o.thp = Thp::On;
            else if (!strcmp(optarg, "off")) o.thp = Thp::Off;
            else if (!strcmp(optarg, "default")) o.thp = Thp::Default;
            else bad_input("%s: invalid value '%s' (want on, off or default)", opt, optarg);
            break;
        case O_CHILDREN: o.children = opt_long(opt, optarg, 0, kMaxProcesses); break;
        case O_CHAIN: o.chain = opt_long(opt, optarg, 0, kMaxProcesses); break;
        case O_SPAWN_AFTER: o.spawn_after = optarg; break;
        case O_WAIT_BEFORE: o.wait_before_touch = optarg; break;
        case O_REPORT: o.report = optarg; break;
        case O_READY: o.ready_file = optarg; break;
        case O_FAULT:
            if (!strcmp(optarg, "exit")) o.fault = Fault::Exit;
            else if (!strcmp(optarg, "exec")) o.fault = Fault::Exec;
            else if (!strcmp(optarg, "thread-exec")) o.fault = Fault::ThreadExec;
            else if (!strcmp(optarg, "munmap")) o.fault = Fault::Munmap;
            else bad_input("%s: invalid value '%s' (want exit, exec, thread-exec or munmap)", opt, optarg);
            break;
        case O_FAULT_AFTER: o.fault_after = optarg; break;
        case ':':
            bad_input("option '%s' needs an argument (see --help)", argv[optind - 1]);
        case '?':
        default:
            if (optopt && optopt < 256) bad_input("unknown option '-%c' (see --help)", optopt);
            bad_input("unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) bad_input("unexpected argument '%s' (see --help)", argv[optind]);

    // Cross-option checks.
    if (o.per_page && o.stride_set) bad_input("--stride and --per-page are mutually exclusive");
    if (o.sweep_period > 0 && o.pattern != Pattern::Seq) bad_input("--sweep-period needs --pattern seq");
    if (o.per_page) o.stride = (uint64_t)g_page;
    if (o.touch_once && o.no_cold_touch)
        bad_input("--touch-once and --no-cold-touch are mutually exclusive");
    if (o.bind_node >= 0 && o.preferred_node >= 0)
        bad_input("--bind-node and --preferred-node are mutually exclusive");
    if ((o.fault != Fault::None) != !o.fault_after.empty())
        bad_input("--fault and --fault-after go together");
    // The hot sweep would fault on the unmapped region.
    if (o.fault == Fault::Munmap && !o.touch_once) bad_input("--fault munmap needs --touch-once");
    for (const char* what : {"--size", "--child-size"}) {
        uint64_t sz = (what[2] == 's') ? o.size : (o.child_size ? o.child_size : o.size);
        // As the region is laid out: offset rounded down, sizes rounded up to pages.
        const uint64_t pg = (uint64_t)g_page;
        uint64_t off = o.hot_offset_set ? o.hot_offset / pg * pg : 0;
        uint64_t len = o.hot_size_set ? (o.hot_size + pg - 1) / pg * pg : 0;
        sz = (sz + pg - 1) / pg * pg;
        if (off + len > sz || (o.hot_offset_set && off >= sz))
            bad_input("hot range (offset %" PRIu64 ", size %" PRIu64 ") does not fit in %s %" PRIu64,
                      o.hot_offset_set ? o.hot_offset : 0, o.hot_size_set ? o.hot_size : 0, what,
                      (what[2] == 's') ? o.size : (o.child_size ? o.child_size : o.size));
    }
    if (o.bind_node >= 0 && !node_exists(o.bind_node))
        bad_input("--bind-node: no NUMA node %ld", o.bind_node);
    if (o.preferred_node >= 0 && !node_exists(o.preferred_node))
        bad_input("--preferred-node: no NUMA node %ld", o.preferred_node);

    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_ZERO(&allowed);
    if (o.cpu_node >= 0) {
        std::string path = "/sys/devices/system/node/node" + std::to_string(o.cpu_node) + "/cpulist";
        std::string text;
        std::vector<int> cpus;
        if (!read_file(path, text)) bad_input("--cpu-node: no NUMA node %ld (%s)", o.cpu_node, path.c_str());
        if (text.empty()) bad_input("--cpu-node: node %ld has no CPUs", o.cpu_node);
        if (!parse_cpu_list(text, cpus)) bad_input("--cpu-node: cannot parse %s", path.c_str());
        CPU_ZERO(&g_node_cpus);
        bool any = false;
        for (int cpu : cpus) {
            CPU_SET(cpu, &g_node_cpus);
            any |= CPU_ISSET(cpu, &allowed) != 0;
        }
        if (!any) bad_input("--cpu-node: none of node %ld's CPUs (%s) is available", o.cpu_node, text.c_str());
        g_have_node_cpus = true;
    }
    for (int cpu : o.pin_cpus)
        if (!CPU_ISSET(cpu, &allowed)) bad_input("--pin-cpus: CPU %d is not available", cpu);

    // Tree shape: fanout children per process, levels of descendants.
    o.fanout = o.children >= 0 ? o.children : (o.chain > 0 ? 1 : 0);
    o.levels = o.chain >= 0 ? o.chain : (o.children > 0 ? 1 : 0);
    long total = 1, level = 1;
    for (long d = 0; d < o.levels && o.fanout > 0; ++d) {
        level *= o.fanout;
        total += level;
        if (total > kMaxProcesses)
            bad_input("process tree too large (more than %ld processes)", kMaxProcesses);
    }

    if (!o.report.empty()) {
        if (o.report == "-") {
            g_report_fd = STDOUT_FILENO;
        } else {
            g_report_fd = open(o.report.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (g_report_fd < 0) bad_input("--report: cannot open '%s': %s", o.report.c_str(), strerror(errno));
        }
    }
}

// ---- small helpers ------------------------------------------------------------------

int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

pid_t gettid_raw() { return (pid_t)syscall(SYS_gettid); }

// What --fault exec and thread-exec exec: a memexercise with a 4 KiB region.
const char* const kFaultExecArgv[] = {"memexercise", "--size", "4K", "--touch-once", "--duration", "0", nullptr};

void exec_fault_image(int) {
    execv("/proc/self/exe", const_cast<char**>(kFaultExecArgv));
    _exit(127);
}

bool file_exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

bool write_all(int fd, const void* buf, size_t len) {
    // One write() call: with O_APPEND (or a pipe and len <= PIPE_BUF) lines never interleave.
    ssize_t n;
    do n = write(fd, buf, len); while (n < 0 && errno == EINTR);
    return n == (ssize_t)len;
}

long mbind_raw(void* addr, size_t len, int mode, long node) {
    unsigned long mask[(kMaxNode + 1) / (8 * sizeof(unsigned long))] = {};
    mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
    unsigned long maxnode = sizeof(mask) * 8 + 1;
    return syscall(SYS_mbind, addr, len, mode, mask, maxnode, 0u);
}

// ---- one process ----------------------------------------------------------------------

struct Region {
    uint8_t* base = nullptr;  // start of the reservation (guards included)
    size_t reserved = 0;
    uint8_t* start = nullptr;  // the region proper, 2 MiB aligned
    size_t size = 0;           // page multiple
    size_t hot_first = 0, hot_pages = 0;  // in pages, relative to start
};

struct Process;

struct Worker {
    Process* proc = nullptr;
    int index = 0;
    pthread_t thread{};
    void* stack = nullptr;
    std::atomic<pid_t> tid{0};
    std::string error;
};

struct Process {
    int depth = 0;
    uint64_t ordinal = 0;   // position in the tree (seeds the random pattern)
    int up_fd = -1;         // write end of the parent's ready pipe (-1: top)
    int64_t deadline = -1;  // monotonic ns; -1: none (descendants run until signalled)
    Region region;
    std::atomic<bool> stop{false};
    int sfd = -1;       // signalfd: SIGTERM, SIGINT, SIGHUP, SIGCHLD
    int done_efd = -1;  // workers post here when their touch slice is done
    int stop_efd = -1;  // readable once the process stops (wakes idle workers)
    int ready_rfd = -1; // children post one byte each when their subtree reported
    std::vector<Worker*> workers;
    uint64_t touched_done = 0;
    std::vector<pid_t> children;  // not yet reaped
    long children_forked = 0, children_ready = 0;
    bool stopping = false, failed = false, reported = false, ready_sent = false;
};

// The accesses below are the workload. They race between threads on purpose:
// ThreadSanitizer is told to leave them alone. They touch only the region
// memexercise maps itself, which AddressSanitizer cannot check (an mmap has no
// redzones), and its shadow reads would be page faults the tests count: ASan
// leaves them alone too.
#if defined(__SANITIZE_THREAD__)
#define MX_WORKLOAD __attribute__((no_sanitize("thread")))
#elif defined(__SANITIZE_ADDRESS__)
#define MX_WORKLOAD __attribute__((no_sanitize("address")))
#else
#define MX_WORKLOAD
#endif

// Touching phase: one write per page of [lo, hi). False if stopped first.
MX_WORKLOAD bool touch_pages(Process& p, size_t lo, size_t hi) {
    uint8_t* start = p.region.start;
    for (size_t pg = lo; pg < hi; ++pg) {
        if ((pg & 255) == 0 && p.stop.load(std::memory_order_relaxed)) return false;
        *(volatile uint8_t*)(start + pg * g_page) = 1;
    }
    return true;
}

// Hot phase: sweep the hot range until stopped.
MX_WORKLOAD void sweep_hot(Process& p, int index) {
    const Options& o = g_opt;
    uint8_t* hot = p.region.start + p.region.hot_first * g_page;
    const size_t hot_bytes = p.region.hot_pages * g_page;
    const size_t stride = (size_t)o.stride;
    const size_t slots = (hot_bytes + stride - 1) / stride;
    const bool wr = o.write;
    uint64_t sink = 0;
    if (o.pattern == Pattern::Seq) {
        // --sweep-period: slot i of sweep k is due at start + (k + i / slots)
        // periods; batches of 4096 slots, or fewer so a batch is 10 ms at most.
        const double period = o.sweep_period;
        size_t batch = 4096;
        if (period > 0) batch = std::max<size_t>(1, std::min<size_t>(batch, (size_t)(slots * 0.01 / period)));
        timespec start{};
        clock_gettime(CLOCK_MONOTONIC, &start);
        uint64_t sweeps = 0;
        size_t slot = 0;
        while (!p.stop.load(std::memory_order_relaxed)) {
            if (period > 0) {
                const double due = period * ((double)sweeps + (double)slot / (double)slots);
                timespec t = start;
                t.tv_sec += (time_t)due;
                t.tv_nsec += (long)((due - (double)(time_t)due) * 1e9);
                if (t.tv_nsec >= 1000000000L) t.tv_sec += 1, t.tv_nsec -= 1000000000L;
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr);  // a signal ends it early: stop is checked
            }
            size_t end = std::min(slots, slot + batch);
            for (; slot < end; ++slot) {
                volatile uint8_t* a = hot + slot * stride;
                if (wr) *a = (uint8_t)slot;
                else sink += *a;
            }
            if (slot == slots) slot = 0, ++sweeps;
        }
    } else {
        // xorshift64, seeded from --seed, the process's place in the tree and the thread.
        uint64_t x = splitmix64(o.seed ^ splitmix64(p.ordinal * 1315423911ull + (uint64_t)p.depth) ^
                                splitmix64(0x1000 + (uint64_t)index));
        if (!x) x = 0x2545f4914f6cdd1dull;
        while (!p.stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 4096; ++i) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                volatile uint8_t* a = hot + (x % slots) * stride;
                if (wr) *a = (uint8_t)x;
                else sink += *a;
            }
        }
    }
    asm volatile("" : : "r"(sink));
}

void* worker_main(void* arg) {
    Worker* w = static_cast<Worker*>(arg);
    Process& p = *w->proc;
    const Options& o = g_opt;
    w->tid.store(gettid_raw());
    if (!o.pin_cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.pin_cpus[w->index % o.pin_cpus.size()], &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            w->error = std::string("sched_setaffinity: ") + strerror(errno);
    }

    // This worker's slice of the touched pages: the whole region, or only the hot
    // range with --no-cold-touch.
    size_t first = 0, count = p.region.size / g_page;
    if (o.no_cold_touch) {
        first = p.region.hot_first;
        count = p.region.hot_pages;
    }
    const size_t n = (size_t)o.threads, i = (size_t)w->index;
    bool done = touch_pages(p, first + count * i / n, first + count * (i + 1) / n);
    uint64_t one = 1;
    if (write(p.done_efd, &one, sizeof one) != sizeof one) abort();

    if (done && !o.touch_once && p.region.hot_pages > 0) sweep_hot(p, w->index);

    // Idle until stopped (--touch-once, empty hot range).
    while (!p.stop.load()) {
        pollfd pfd{p.stop_efd, POLLIN, 0};
        poll(&pfd, 1, 1000);
    }
    return nullptr;
}

void fail(Process& p, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void fail(Process& p, const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    message("%s", buf);
    p.failed = true;
    p.stop.store(true);
}

void reap(Process& p) {
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        auto it = std::find(p.children.begin(), p.children.end(), pid);
        if (it == p.children.end()) continue;
        p.children.erase(it);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;  // stopped by a signal we or a test sent
        if (WIFEXITED(st)) fail(p, "child %d exited with status %d", (int)pid, WEXITSTATUS(st));
        else if (WIFSIGNALED(st)) fail(p, "child %d killed by signal %d (%s)", (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
    }
}

void check_ready(Process& p) {
    if (p.ready_sent || !p.reported || p.children_ready < p.children_forked) return;
    if (p.children_forked < ((p.depth < g_opt.levels) ? g_opt.fanout : 0)) return;
    p.ready_sent = true;
    if (p.up_fd >= 0) {
        char b = 'r';
        if (!write_all(p.up_fd, &b, 1)) fail(p, "cannot notify parent: %s", strerror(errno));
        close(p.up_fd);
        p.up_fd = -1;
    } else if (!g_opt.ready_file.empty()) {
        std::string tmp = g_opt.ready_file + ".tmp." + std::to_string(getpid());
        int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        std::string body = std::to_string(getpid()) + "\n";
        if (fd < 0 || !write_all(fd, body.data(), body.size()) || close(fd) != 0 ||
            rename(tmp.c_str(), g_opt.ready_file.c_str()) != 0)
            fail(p, "cannot create ready file '%s': %s", g_opt.ready_file.c_str(), strerror(errno));
    }
}

// One round of the event loop: signals, children, worker progress, the deadline.
void pump(Process& p, int timeout_ms) {
    if (p.deadline >= 0) {
        int64_t left = p.deadline - now_ns();
        if (left <= 0) {
            p.stop.store(true);
            return;
        }
        timeout_ms = (int)std::min<int64_t>(timeout_ms, (left + 999999) / 1000000);
    }
    pollfd fds[3] = {{p.sfd, POLLIN, 0}, {p.done_efd, POLLIN, 0}, {p.ready_rfd, POLLIN, 0}};
    int n = poll(fds, 3, timeout_ms);
    if (n < 0 && errno != EINTR) fail(p, "poll: %s", strerror(errno));
    if (n > 0 && (fds[0].revents & POLLIN)) {
        signalfd_siginfo si;
        while (read(p.sfd, &si, sizeof si) == sizeof si) {
            if (si.ssi_signo == SIGCHLD) reap(p);
            else p.stop.store(true);
        }
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
        uint64_t v;
        if (read(p.done_efd, &v, sizeof v) == sizeof v) p.touched_done += v;
    }
    if (n > 0 && (fds[2].revents & (POLLIN | POLLHUP))) {
        char buf[64];
        ssize_t r = read(p.ready_rfd, buf, sizeof buf);
        if (r > 0) p.children_ready += r;
        else if (r == 0) { close(p.ready_rfd); p.ready_rfd = -1; }
    }
    reap(p);  // SIGCHLD coalesces; cheap to look again
    if (p.deadline >= 0 && now_ns() >= p.deadline) p.stop.store(true);
    check_ready(p);
}

// Wait until `path` exists; false if stopped first.
bool wait_for_file(Process& p, const std::string& path) {
    while (!p.stop.load()) {
        if (file_exists(path)) return true;
        pump(p, 20);
    }
    return false;
}

void setup_region(Process& p, uint64_t size) {
    const Options& o = g_opt;
    Region& r = p.region;
    r.size = (size + g_page - 1) / g_page * g_page;
    r.reserved = r.size + 2 * kGuard + kTwoMiB;
    void* base = mmap(nullptr, r.reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) { fail(p, "mmap reserve %zu bytes: %s", r.reserved, strerror(errno)); return; }
    r.base = (uint8_t*)base;
    uintptr_t start = ((uintptr_t)r.base + kGuard + kTwoMiB - 1) & ~(uintptr_t)(kTwoMiB - 1);
    // Trim the alignment slack so exactly one guard gap remains on each side.
    uint8_t* lo = (uint8_t*)(start - kGuard);
    uint8_t* hi = (uint8_t*)(start + r.size + kGuard);
    if (lo > r.base) munmap(r.base, lo - r.base);
    if (r.base + r.reserved > hi) munmap(hi, r.base + r.reserved - hi);
    r.base = lo;
    r.reserved = hi - lo;
    void* m = mmap((void*)start, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (m == MAP_FAILED) { fail(p, "mmap %zu bytes: %s", r.size, strerror(errno)); return; }
    r.start = (uint8_t*)m;
    // Descendants must not inherit (COW-share) this region or its guards.
    if (madvise(r.base, r.reserved, MADV_DONTFORK) != 0) { fail(p, "madvise(MADV_DONTFORK): %s", strerror(errno)); return; }
    if (o.thp != Thp::Default) {
        int adv = o.thp == Thp::On ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
        if (madvise(r.start, r.size, adv) != 0) {
            fail(p, "madvise(%s): %s", o.thp == Thp::On ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE", strerror(errno));
            return;
        }
    }
    if (o.bind_node >= 0 && mbind_raw(r.start, r.size, kMpolBind, o.bind_node) != 0) {
        fail(p, "mbind(MPOL_BIND, node %ld): %s", o.bind_node, strerror(errno));
        return;
    }
    if (o.preferred_node >= 0 && mbind_raw(r.start, r.size, kMpolPreferred, o.preferred_node) != 0) {
        fail(p, "mbind(MPOL_PREFERRED, node %ld): %s", o.preferred_node, strerror(errno));
        return;
    }
    size_t pages = r.size / g_page;
    uint64_t off = o.hot_offset_set ? o.hot_offset : 0;
    r.hot_first = std::min<size_t>(off / g_page, pages);
    size_t hot_end;
    // The offset rounds down and the size up, each on its own: an offset inside a
    // page must not make the range a page longer.
    if (o.hot_size_set) hot_end = std::min<size_t>(r.hot_first + (o.hot_size + g_page - 1) / g_page, pages);
    else hot_end = std::min(pages, r.hot_first + std::max<size_t>(1, pages / 8));
    r.hot_pages = hot_end > r.hot_first ? hot_end - r.hot_first : 0;
}

bool start_workers(Process& p) {
    const Options& o = g_opt;
    for (long i = 0; i < o.threads; ++i) {
        Worker* w = new Worker;
        w->proc = &p;
        w->index = (int)i;
        // Our own stacks, left mapped in forked children (their glibc walks the
        // parent's thread descriptors after fork, so no MADV_DONTFORK). A child's
        // new stacks therefore never reuse a parent's thread's address, which keeps
        // pthread_t values unique (ThreadSanitizer insists on that).
        void* st = mmap(nullptr, kThreadStack, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (st == MAP_FAILED) {
            fail(p, "mmap thread stack: %s", strerror(errno));
            delete w;
            return false;
        }
        w->stack = st;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, st, kThreadStack);
        int e = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (e != 0) {
            fail(p, "pthread_create: %s", strerror(e));
            munmap(st, kThreadStack);
            delete w;
            return false;
        }
        p.workers.push_back(w);
    }
    return true;
}

void write_report(Process& p) {
    const Region& r = p.region;
    size_t pages_touched = g_opt.no_cold_touch ? r.hot_pages : r.size / g_page;
    std::string line;
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"pid\":%d,\"ppid\":%d,\"depth\":%d,\"region_start\":\"0x%" PRIxPTR "\",\"region_size\":%zu,"
             "\"hot_start\":\"0x%" PRIxPTR "\",\"hot_size\":%zu,\"page_size\":%ld,\"pages_touched\":%zu,\"threads\":[",
             (int)getpid(), (int)getppid(), p.depth, (uintptr_t)r.start, r.size,
             (uintptr_t)(r.start + r.hot_first * g_page), r.hot_pages * g_page, g_page, pages_touched);
    line = buf;
    for (size_t i = 0; i < p.workers.size(); ++i) {
        if (i) line += ',';
        line += std::to_string(p.workers[i]->tid.load());
    }
    line += "]}\n";
    if (g_report_fd >= 0 && !write_all(g_report_fd, line.data(), line.size()))
        fail(p, "cannot write report: %s", strerror(errno));
}

int open_signalfd() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int run_process(Process& p);

// Fork one child running the same exercise one level deeper. Returns in the parent only.
void fork_child(Process& p, long index, int ready_wfd) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) { fail(p, "fork: %s", strerror(errno)); return; }
    if (pid > 0) {
        p.children.push_back(pid);
        ++p.children_forked;
        return;
    }
    // Child: drop the parent's per-process state (its region was MADV_DONTFORK, so
    // it is not even mapped here), keep the report fd.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(0);
    for (int fd : {p.sfd, p.done_efd, p.stop_efd, p.ready_rfd, p.up_fd})
        if (fd >= 0) close(fd);
    p.workers.clear();  // the parent's threads do not exist here
    p.children.clear();
    Process c;
    c.depth = p.depth + 1;
    c.ordinal = p.ordinal * (uint64_t)(g_opt.fanout + 1) + (uint64_t)index + 1;
    c.up_fd = ready_wfd;
    int rc = run_process(c);
    fflush(nullptr);
    _exit(rc);
}

void shutdown(Process& p) {
    p.stop.store(true);
    p.stopping = true;
    if (p.stop_efd >= 0) {
        uint64_t one = 1;
        if (write(p.stop_efd, &one, sizeof one) < 0) {}
    }
    for (pid_t c : p.children) kill(c, SIGTERM);
    for (Worker* w : p.workers) {
        pthread_join(w->thread, nullptr);
        munmap(w->stack, kThreadStack);
        delete w;
    }
    p.workers.clear();
    int64_t give_up = now_ns() + 10ll * 1000000000;
    p.deadline = -1;
    while (!p.children.empty() && now_ns() < give_up) pump(p, 100);
    for (pid_t c : p.children) {
        message("child %d did not stop after SIGTERM; killing it", (int)c);
        kill(c, SIGKILL);
    }
    while (!p.children.empty()) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) break;
        auto it = std::find(p.children.begin(), p.children.end(), pid);
        if (it != p.children.end()) p.children.erase(it);
    }
}

int run_process(Process& p) {
    const Options& o = g_opt;
    p.sfd = open_signalfd();
    p.done_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p.stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p.sfd < 0 || p.done_efd < 0 || p.stop_efd < 0) {
        message("signalfd/eventfd: %s", strerror(errno));
        return 1;
    }
    if (g_have_node_cpus && sched_setaffinity(0, sizeof g_node_cpus, &g_node_cpus) != 0) {
        message("sched_setaffinity(--cpu-node %ld): %s", o.cpu_node, strerror(errno));
        return 1;
    }
    uint64_t size = (p.depth > 0 && o.child_size) ? o.child_size : o.size;
    setup_region(p, size);

    if (!p.failed && !o.wait_before_touch.empty()) wait_for_file(p, o.wait_before_touch);

    // Touching phase (workers), then the report.
    if (!p.stop.load() && start_workers(p)) {
        while (!p.stop.load() && p.touched_done < p.workers.size()) pump(p, 50);
        for (Worker* w : p.workers)
            if (!w->error.empty()) fail(p, "worker %d: %s", w->index, w->error.c_str());
        if (!p.stop.load()) {
            write_report(p);
            p.reported = true;
        }
    }

    // Next level of the tree.
    if (!p.stop.load() && p.depth < o.levels && o.fanout > 0) {
        if (o.spawn_after.empty() || wait_for_file(p, o.spawn_after)) {
            int fds[2];
            if (pipe2(fds, O_CLOEXEC) != 0) {
                fail(p, "pipe: %s", strerror(errno));
            } else {
                p.ready_rfd = fds[0];
                fcntl(p.ready_rfd, F_SETFL, O_NONBLOCK);
                for (long i = 0; i < o.fanout && !p.stop.load(); ++i) fork_child(p, i, fds[1]);
                close(fds[1]);
            }
        }
    }
    check_ready(p);

    // --fault: the last level's processes vanish, or lose their memory, when told.
    bool fault_pending = o.fault != Fault::None && p.depth == o.levels && p.reported;
    while (!p.stop.load()) {
        pump(p, fault_pending ? 20 : 1000);
        if (!fault_pending || !file_exists(o.fault_after)) continue;
        fault_pending = false;
        if (o.fault == Fault::Exit) _exit(0);
        if (o.fault == Fault::Exec) {
            // Same pid, new memory: none of the old addresses is mapped (the
            // new image's 4 KiB region lands elsewhere). The blocked signals
            // and PDEATHSIG carry over, so the parent still stops it.
            execv("/proc/self/exe", const_cast<char**>(kFaultExecArgv));
            fail(p, "exec /proc/self/exe: %s", strerror(errno));
        }
        // The first worker execs from a signal handler (execv is
        // async-signal-safe): the kernel gives it the main thread's id.
        if (o.fault == Fault::ThreadExec) {
            const pid_t worker = p.workers.empty() ? 0 : p.workers[0]->tid.load();
            if (worker <= 0 || syscall(SYS_tgkill, getpid(), worker, SIGUSR2) != 0)
                fail(p, "thread-exec: no worker to signal");
        }
        if (o.fault == Fault::Munmap && munmap(p.region.base, p.region.reserved) != 0)
            fail(p, "munmap: %s", strerror(errno));
    }
    shutdown(p);
    return p.failed ? 1 : 0;
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Processes fork while their worker threads run (that is the point: a test starts
// membalancer between phases), which ThreadSanitizer refuses by default.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }
#endif

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer checks at exit from a helper task that shares the address space
// but is a process of its own to the kernel: membalancer and the profiler would
// track it as one more process of the tree, with accesses and an exit of its
// own, and the tests count both exactly. memexercise's memory is the regions it
// maps; the programs under test (membalancer, profiler, the test binaries) keep
// the leak check.
extern "C" int __lsan_is_turned_off() { return 1; }
#endif

int main(int argc, char** argv) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) g_page = ps;
    parse_args(argc, argv);

    // Signals are consumed through a signalfd by the main thread of each process;
    // block them before any thread or child exists so that every one inherits it.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    if (g_opt.fault == Fault::ThreadExec) signal(SIGUSR2, exec_fault_image);

    Process top;
    if (g_opt.duration > 0) top.deadline = now_ns() + (int64_t)(g_opt.duration * 1e9);
    int rc = run_process(top);
    fflush(nullptr);
    return rc;
}
