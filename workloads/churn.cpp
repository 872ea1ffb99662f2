// churn: a process tree that never settles, for membalancer's soak test.
//
// The first process lives for --duration and keeps up to --live children
// alive. Each descendant lives a random short time; its main thread and up to
// --threads worker threads allocate, touch and free memory (malloc, mmap,
// partial munmap, MADV_DONTNEED); it may fork children of its own (down to
// --depth levels) and exits, sometimes while its threads still run. The first
// process churns threads and memory too. It is a child subreaper, so orphans
// stay in its tree and are reaped by it. Every choice (lifetimes, sizes,
// operations, thread and child counts) comes from --seed and the process's or
// thread's place in the tree; only the interleaving depends on the scheduler.
// See docs/memexercise.md, section "churn".
//
// Like memexercise: links with -pthread only.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <getopt.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Options {
    double duration = 60.0;   // seconds; 0: until SIGTERM/SIGINT
    uint64_t seed = 1;
    long live = 8;             // children of the first process alive at once
    long depth = 2;            // levels below the first process
    long lifetime_ms = 2000;   // a descendant lives lifetime/10 .. lifetime
    long spawn_ms = 100;       // the first process waits 0 .. spawn_ms between forks
    long threads = 3;          // worker threads per process: 0 .. threads
    long max_map_kib = 512;    // largest mmap
    long footprint_mib = 16;   // live bytes per thread above which it frees first
    long pause_ms = 40;        // a thread waits 0 .. pause_ms between operations
    std::string stats;         // rewritten every second
};

Options g_opt;
long g_page = 4096;

// Shared by the whole tree (an anonymous MAP_SHARED page mapped before the
// first fork): what was done, for the soak report.
struct Counters {
    std::atomic<uint64_t> processes_created, processes_exited, processes_failed, fork_failures;
    std::atomic<uint64_t> threads_created, operations, op_failures, pages_touched;
    std::atomic<uint64_t> malloc_bytes, free_bytes, mmap_bytes, munmap_bytes, dontneed_bytes;
};
Counters* g_ctr = nullptr;

int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The seed of child `index` of the process (or thread) seeded `parent`.
uint64_t derive(uint64_t parent, uint64_t index) { return splitmix64(parent ^ splitmix64(index + 1)); }

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(splitmix64(seed) | 1) {}
    uint64_t next() {  // xorshift64*
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        return s * 0x2545f4914f6cdd1dull;
    }
    uint64_t below(uint64_t n) { return n ? next() % n : 0; }
    // lo .. hi, spread evenly over the powers of two in between.
    uint64_t log_uniform(uint64_t lo, uint64_t hi) {
        int octaves = 0;
        while ((lo << (octaves + 1)) <= hi) ++octaves;
        uint64_t base = lo << below(octaves + 1);
        return std::min(hi, base + below(base));
    }
};

// ---- memory operations ---------------------------------------------------------------

struct Block {
    uint8_t* p;
    size_t n;
    bool mapped;  // mmap (else malloc)
};

// One thread's allocations. Bytes still held at exit are released by the
// kernel (a process that exits) or freed here (a thread that ends).
struct Heap {
    Rng rng;
    std::vector<Block> blocks;
    size_t bytes = 0;
    explicit Heap(uint64_t seed) : rng(seed) {}

    void touch(uint8_t* p, size_t n) {
        for (size_t off = 0; off < n; off += (size_t)g_page) p[off] = (uint8_t)off;
        p[n - 1] = 1;
        g_ctr->pages_touched += (n + (size_t)g_page - 1) / (size_t)g_page;
    }

    void release(size_t i) {
        Block b = blocks[i];
        blocks[i] = blocks.back();
        blocks.pop_back();
        bytes -= b.n;
        if (!b.mapped) {
            free(b.p);
            g_ctr->free_bytes += b.n;
            return;
        }
        // A quarter of the mappings lose a hole in the middle first, so
        // the process's map splits (one VMA becomes two) before it goes.
        size_t pages = b.n / (size_t)g_page;
        if (pages >= 3 && rng.below(4) == 0) {
            size_t hole = 1 + rng.below(pages - 2), len = 1 + rng.below(pages - hole - 1);
            munmap(b.p + hole * g_page, len * g_page);
            g_ctr->munmap_bytes += len * g_page;
            size_t tail = hole + len;
            blocks.push_back({b.p, hole * g_page, true});
            blocks.push_back({b.p + tail * g_page, (pages - tail) * g_page, true});
            bytes += b.n - len * g_page;
            return;
        }
        munmap(b.p, b.n);
        g_ctr->munmap_bytes += b.n;
    }

    void step() {
        const uint64_t r = rng.below(100);
        const size_t cap = (size_t)g_opt.footprint_mib << 20;
        ++g_ctr->operations;
        if (!blocks.empty() && (bytes > cap || blocks.size() >= 64 || r < 35)) {
            release(rng.below(blocks.size()));
        } else if (r < 60) {
            size_t n = rng.log_uniform(16, 64 << 10);
            auto* p = static_cast<uint8_t*>(malloc(n));
            if (!p) { ++g_ctr->op_failures; return; }
            touch(p, n);
            blocks.push_back({p, n, false});
            bytes += n;
            g_ctr->malloc_bytes += n;
        } else if (r < 90 || blocks.empty()) {
            size_t n = rng.log_uniform((uint64_t)g_page, (uint64_t)g_opt.max_map_kib << 10);
            n = (n + g_page - 1) / g_page * g_page;
            void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) { ++g_ctr->op_failures; return; }
            touch(static_cast<uint8_t*>(p), n);
            blocks.push_back({static_cast<uint8_t*>(p), n, true});
            bytes += n;
            g_ctr->mmap_bytes += n;
        } else {
            // Drop a mapping's pages and touch them again: the same
            // addresses fault anew.
            Block* b = nullptr;
            for (size_t tries = 0; tries < 4 && !b; ++tries) {
                Block& c = blocks[rng.below(blocks.size())];
                if (c.mapped) b = &c;
            }
            if (!b) return;
            madvise(b->p, b->n, MADV_DONTNEED);
            g_ctr->dontneed_bytes += b->n;
            touch(b->p, b->n);
        }
    }

    void free_all() {
        while (!blocks.empty()) {
            Block b = blocks.back();
            blocks.pop_back();
            if (b.mapped) munmap(b.p, b.n), g_ctr->munmap_bytes += b.n;
            else free(b.p), g_ctr->free_bytes += b.n;
        }
        bytes = 0;
    }
};

// ---- threads ---------------------------------------------------------------------------

struct Worker {
    pthread_t thread{};
    uint64_t seed = 0;
    int64_t until = 0;
    const std::atomic<bool>* stop = nullptr;
    std::atomic<bool> done{false};
};

void* worker_main(void* arg) {
    auto* w = static_cast<Worker*>(arg);
    Heap heap(w->seed);
    while (now_ms() < w->until && !w->stop->load()) {
        heap.step();
        sleep_ms((long)heap.rng.below((uint64_t)g_opt.pause_ms + 1));
    }
    heap.free_all();
    w->done = true;
    return nullptr;
}

bool start_worker(Worker* w) {
    if (pthread_create(&w->thread, nullptr, worker_main, w) != 0) {
        ++g_ctr->op_failures;
        return false;
    }
    ++g_ctr->threads_created;
    return true;
}

// ---- processes -------------------------------------------------------------------------

// Accounts for one reaped process; false if it failed (expected: exit 0, or
// SIGTERM when the tree is being stopped).
bool account_exit(pid_t pid, int status, bool stopping) {
    ++g_ctr->processes_exited;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    if (stopping && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) return true;
    ++g_ctr->processes_failed;
    if (WIFSIGNALED(status)) fprintf(stderr, "churn: process %d killed by signal %d\n", (int)pid, WTERMSIG(status));
    else fprintf(stderr, "churn: process %d exited with status %d\n", (int)pid, WEXITSTATUS(status));
    return false;
}

void reap_nohang(std::set<pid_t>* children, bool stopping) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        account_exit(pid, status, stopping);
        if (children) children->erase(pid);
    }
}

[[noreturn]] void run_descendant(uint64_t seed, long depth);

// Forks a descendant at `depth`; returns its pid in the parent, -1 on failure.
pid_t spawn(uint64_t seed, long depth, bool die_with_parent) {
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        ++g_ctr->fork_failures;
        return -1;
    }
    if (pid > 0) {
        ++g_ctr->processes_created;
        return pid;
    }
    // The first process's children die with it; deeper ones outlive their
    // parent (orphans, adopted by the subreaper) and end on their own.
    if (die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    run_descendant(seed, depth);
}

void run_descendant(uint64_t seed, long depth) {
    Rng rng(seed);
    const int64_t start = now_ms();
    const long lo = std::max(1L, g_opt.lifetime_ms / 10);
    const int64_t lifetime = lo + (int64_t)rng.below((uint64_t)(g_opt.lifetime_ms - lo + 1));
    const int64_t deadline = start + lifetime;
    // One process in four ends with exit_group while its threads still run.
    const bool abrupt = rng.below(4) == 0;
    std::atomic<bool> stop{false};
    std::vector<Worker> workers((size_t)rng.below((uint64_t)g_opt.threads + 1));
    for (size_t i = 0; i < workers.size(); ++i) {
        Worker& w = workers[i];
        w.seed = derive(seed, 1000 + i);
        w.until = abrupt ? deadline + lifetime : start + lifetime * (25 + (int64_t)rng.below(76)) / 100;
        w.stop = &stop;
        start_worker(&w);
    }
    std::vector<int64_t> forks;  // when each child is forked
    if (depth < g_opt.depth)
        for (uint64_t k = rng.below(3); k > 0; --k) forks.push_back(start + (int64_t)rng.below((uint64_t)lifetime));
    std::sort(forks.begin(), forks.end());
    Heap heap(derive(seed, 0));
    size_t forked = 0;
    while (now_ms() < deadline) {
        while (forked < forks.size() && now_ms() >= forks[forked]) {
            spawn(derive(seed, 1 + forked), depth + 1, false);
            ++forked;
        }
        heap.step();
        reap_nohang(nullptr, false);
        sleep_ms((long)rng.below((uint64_t)g_opt.pause_ms + 1));
    }
    if (!abrupt)
        for (Worker& w : workers)
            if (w.thread) pthread_join(w.thread, nullptr);
    reap_nohang(nullptr, false);
    _exit(0);  // exit_group: running threads end here; unreaped children go to the subreaper
}

void write_stats(double elapsed, FILE* to) {
    const Counters& c = *g_ctr;
    const uint64_t allocated = c.malloc_bytes + c.mmap_bytes, freed = c.free_bytes + c.munmap_bytes;
    fprintf(to,
            "{\"elapsed_s\":%.1f,\"processes_created\":%" PRIu64 ",\"processes_exited\":%" PRIu64
            ",\"live_descendants\":%" PRIu64 ",\"processes_failed\":%" PRIu64 ",\"fork_failures\":%" PRIu64
            ",\"threads_created\":%" PRIu64 ",\"operations\":%" PRIu64 ",\"op_failures\":%" PRIu64
            ",\"pages_touched\":%" PRIu64 ",\"bytes_allocated\":%" PRIu64 ",\"bytes_freed\":%" PRIu64
            ",\"malloc_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64 ",\"mmap_bytes\":%" PRIu64
            ",\"munmap_bytes\":%" PRIu64 ",\"dontneed_bytes\":%" PRIu64 "}\n",
            elapsed, c.processes_created.load(), c.processes_exited.load(),
            c.processes_created.load() - c.processes_exited.load(), c.processes_failed.load(),
            c.fork_failures.load(), c.threads_created.load(), c.operations.load(), c.op_failures.load(),
            c.pages_touched.load(), allocated, freed, c.malloc_bytes.load(), c.free_bytes.load(),
            c.mmap_bytes.load(), c.munmap_bytes.load(), c.dontneed_bytes.load());
}

// Written to a temporary file and renamed: a reader never sees half a line.
void save_stats(double elapsed) {
    if (g_opt.stats.empty()) return;
    const std::string tmp = g_opt.stats + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    if (!f) return;
    write_stats(elapsed, f);
    if (fclose(f) == 0) rename(tmp.c_str(), g_opt.stats.c_str());
}

int run_first(const sigset_t& stop_signals) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    Rng rng(g_opt.seed);
    const int64_t start = now_ms();
    const int64_t end = g_opt.duration > 0 ? start + (int64_t)(g_opt.duration * 1000) : INT64_MAX;
    std::atomic<bool> stop{false};
    std::set<pid_t> children;
    std::vector<Worker*> workers;
    Heap heap(derive(g_opt.seed, 0));
    uint64_t spawned = 0, threads = 0;
    int64_t next_spawn = start, next_stats = start;
    bool signalled = false;
    while (now_ms() < end) {
        const int64_t now = now_ms();
        reap_nohang(&children, false);
        if ((long)children.size() < g_opt.live && now >= next_spawn) {
            pid_t pid = spawn(derive(g_opt.seed, 1 + spawned++), 1, true);
            if (pid > 0) children.insert(pid);
            next_spawn = now + (int64_t)rng.below((uint64_t)g_opt.spawn_ms + 1);
        }
        // Threads come and go in the long-lived process too.
        std::erase_if(workers, [](Worker* w) {
            if (!w->done) return false;
            pthread_join(w->thread, nullptr);
            delete w;
            return true;
        });
        if ((long)workers.size() < g_opt.threads) {
            auto* w = new Worker;
            w->seed = derive(g_opt.seed, 1000000 + threads++);
            w->until = now + 1 + (int64_t)rng.below((uint64_t)g_opt.lifetime_ms);
            w->stop = &stop;
            if (start_worker(w)) workers.push_back(w);
            else delete w;
        }
        heap.step();
        if (now >= next_stats) save_stats((now - start) / 1000.0), next_stats = now + 1000;
        long pause = (long)rng.below((uint64_t)g_opt.pause_ms + 1);
        timespec ts{pause / 1000, (pause % 1000) * 1000000};
        int sig = sigtimedwait(&stop_signals, nullptr, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            signalled = true;
            break;
        }
    }
    // Stop: direct children at once; deeper descendants (adopted or not)
    // end within --lifetime-ms on their own and are reaped here.
    stop = true;
    for (Worker* w : workers) pthread_join(w->thread, nullptr), delete w;
    heap.free_all();
    for (pid_t c : children) kill(c, SIGTERM);
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, 0)) > 0 || (pid < 0 && errno == EINTR))
        if (pid > 0) account_exit(pid, status, true);
    const double elapsed = (now_ms() - start) / 1000.0;
    save_stats(elapsed);
    write_stats(elapsed, stdout);
    if (signalled) fprintf(stderr, "churn: stopped by a signal after %.1f s\n", elapsed);
    return g_ctr->processes_failed ? 1 : 0;
}

// ---- options ----------------------------------------------------------------------------

[[noreturn]] void bad_input(const char* what, const char* arg) {
    fprintf(stderr, "churn: %s: '%s' is not valid (see --help)\n", what, arg);
    exit(2);
}

long opt_long(const char* what, const char* arg, long lo, long hi) {
    char* end = nullptr;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi) bad_input(what, arg);
    return v;
}

void usage() {
    printf(
        "usage: churn [options]\n"
        "  --duration S        run time of the tree in seconds, 0 = until SIGTERM/SIGINT (default 60)\n"
        "  --seed N            seed of every choice (default 1)\n"
        "  --live N            children of the first process alive at once (default 8)\n"
        "  --depth N           levels of descendants below the first process (default 2)\n"
        "  --lifetime-ms N     a descendant lives N/10 .. N ms (default 2000)\n"
        "  --spawn-ms N        the first process waits 0 .. N ms between forks (default 100)\n"
        "  --threads N         worker threads per process, 0 .. N (default 3)\n"
        "  --max-map-kib N     largest mmap in KiB (default 512)\n"
        "  --footprint-mib N   a thread holding more frees before it allocates (default 16)\n"
        "  --pause-ms N        a thread waits 0 .. N ms between operations (default 40)\n"
        "  --stats FILE        write the counters as one JSON line to FILE every second\n"
        "The counters are also printed on stdout when the tree has stopped.\n");
}

void parse_args(int argc, char** argv) {
    enum { kDuration = 1, kSeed, kLive, kDepth, kLifetime, kSpawn, kThreads, kMaxMap, kFootprint, kPause, kStats };
    static const option longs[] = {
        {"duration", required_argument, nullptr, kDuration}, {"seed", required_argument, nullptr, kSeed},
        {"live", required_argument, nullptr, kLive},         {"depth", required_argument, nullptr, kDepth},
        {"lifetime-ms", required_argument, nullptr, kLifetime}, {"spawn-ms", required_argument, nullptr, kSpawn},
        {"threads", required_argument, nullptr, kThreads},   {"max-map-kib", required_argument, nullptr, kMaxMap},
        {"footprint-mib", required_argument, nullptr, kFootprint}, {"pause-ms", required_argument, nullptr, kPause},
        {"stats", required_argument, nullptr, kStats},       {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, nullptr)) != -1) {
        switch (c) {
        case kDuration: {
            char* end = nullptr;
            g_opt.duration = strtod(optarg, &end);
            if (end == optarg || *end || !(g_opt.duration >= 0)) bad_input("--duration", optarg);
            break;
        }
        case kSeed: g_opt.seed = (uint64_t)opt_long("--seed", optarg, 0, LONG_MAX); break;
        case kLive: g_opt.live = opt_long("--live", optarg, 1, 1000); break;
        case kDepth: g_opt.depth = opt_long("--depth", optarg, 1, 16); break;
        case kLifetime: g_opt.lifetime_ms = opt_long("--lifetime-ms", optarg, 10, 3600000); break;
        case kSpawn: g_opt.spawn_ms = opt_long("--spawn-ms", optarg, 0, 3600000); break;
        case kThreads: g_opt.threads = opt_long("--threads", optarg, 0, 64); break;
        case kMaxMap: g_opt.max_map_kib = opt_long("--max-map-kib", optarg, 4, 1 << 20); break;
        case kFootprint: g_opt.footprint_mib = opt_long("--footprint-mib", optarg, 1, 1 << 16); break;
        case kPause: g_opt.pause_ms = opt_long("--pause-ms", optarg, 0, 10000); break;
        case kStats: g_opt.stats = optarg; break;
        case 'h': usage(); exit(0);
        default: exit(2);  // getopt named the problem
        }
    }
    if (optind < argc) bad_input("argument", argv[optind]);
}

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Processes fork while their threads run, which ThreadSanitizer refuses by default.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }
#endif

int main(int argc, char** argv) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) g_page = ps;
    parse_args(argc, argv);
    void* shared = mmap(nullptr, sizeof(Counters), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("churn: mmap");
        return 1;
    }
    g_ctr = new (shared) Counters{};
    // The first process takes its stop signals synchronously (sigtimedwait);
    // descendants unblock them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return run_first(stop_signals);
}
