// forkstorm: short-lived children at a given rate, for membalancer's fault
// injection tests (tests/integration/test_faults.cpp).
//
// The first process forks children paced at --rate per second for
// --duration seconds (as fast as it can when it falls behind: the report
// says what rate it reached). Each child writes --child-pages fresh pages
// (so that a page-fault sampler sees it) and exits at once, except --keep of
// them, spread evenly over the storm, which stay until the first process
// stops. The first process reaps as it goes, so the tree after the storm is
// exactly the first process and the kept children. Then it appends one JSON
// line to --report and waits for SIGTERM/SIGINT, which it passes on to the
// kept children before it reaps them and exits.
//
// Like memexercise: links with -pthread only. See docs/memexercise.md.

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <getopt.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Options {
    double rate = 1000;       // children per second
    double duration = 10;     // seconds of storm
    long keep = 0;            // children that stay alive
    long child_pages = 1;     // pages each child writes
    std::string start_file;   // wait until it exists before the storm
    std::string report;       // one JSON line when the storm is over
};

Options g_opt;
volatile sig_atomic_t g_stop = 0;

[[noreturn]] void bad_input(const char* what, const char* arg) {
    fprintf(stderr, "forkstorm: %s '%s' (see --help)\n", what, arg);
    exit(2);
}

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sleep_s(double s) {
    if (s <= 0) return;
    timespec ts{(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, nullptr);  // a signal cuts it short: the loop looks at g_stop
}

double parse_double(const char* opt, const char* s, double lo, double hi) {
    char* end = nullptr;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || errno || *end || !(v >= lo && v <= hi)) bad_input(opt, s);
    return v;
}

void usage() {
    printf(
        "Usage: forkstorm [OPTIONS]\n"
        "Forks short-lived children at a given rate, then waits for SIGTERM.\n"
        "  --rate N            children per second (default 1000)\n"
        "  --duration S        seconds of storm (default 10)\n"
        "  --keep N            children, spread over the storm, that stay alive (default 0)\n"
        "  --child-pages N     fresh pages each child writes before it exits (default 1)\n"
        "  --start-file FILE   wait until FILE exists before the storm\n"
        "  --report FILE       append one JSON line when the storm is over ('-' = stdout)\n"
        "Bad input: one line on stderr, exit 2.\n");
}

void parse_args(int argc, char** argv) {
    enum { O_RATE = 256, O_DURATION, O_KEEP, O_PAGES, O_START, O_REPORT };
    static const option longopts[] = {
        {"rate", required_argument, nullptr, O_RATE},
        {"duration", required_argument, nullptr, O_DURATION},
        {"keep", required_argument, nullptr, O_KEEP},
        {"child-pages", required_argument, nullptr, O_PAGES},
        {"start-file", required_argument, nullptr, O_START},
        {"report", required_argument, nullptr, O_REPORT},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, nullptr)) != -1) {
        switch (c) {
        case 'h': usage(); exit(0);
        case O_RATE: g_opt.rate = parse_double("--rate: invalid rate", optarg, 1, 1e6); break;
        case O_DURATION: g_opt.duration = parse_double("--duration: invalid seconds", optarg, 0, 3600); break;
        case O_KEEP: g_opt.keep = (long)parse_double("--keep: invalid count", optarg, 0, 10000); break;
        case O_PAGES: g_opt.child_pages = (long)parse_double("--child-pages: invalid count", optarg, 0, 1 << 20); break;
        case O_START: g_opt.start_file = optarg; break;
        case O_REPORT: g_opt.report = optarg; break;
        case ':': bad_input("option needs an argument:", argv[optind - 1]);
        default: bad_input("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) bad_input("unexpected argument", argv[optind]);
}

// A child: fresh pages written once (each a first-touch fault), then gone,
// unless kept.
[[noreturn]] void child(bool keep) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (g_opt.child_pages > 0) {
        size_t len = (size_t)g_opt.child_pages * page;
        void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            for (size_t off = 0; off < len; off += page) static_cast<volatile char*>(p)[off] = 1;
    }
    if (!keep) _exit(0);
    while (!g_stop) sleep_s(0.1);  // SIGTERM from the first process (or PDEATHSIG)
    _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
    parse_args(argc, argv);
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop = 1; };
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    while (!g_opt.start_file.empty() && access(g_opt.start_file.c_str(), F_OK) != 0 && !g_stop) sleep_s(0.01);

    const uint64_t total = (uint64_t)(g_opt.rate * g_opt.duration);
    std::vector<pid_t> kept;
    uint64_t forked = 0, fork_failures = 0, reaped = 0, max_live = 0;
    const pid_t self = getpid();
    const double t0 = now_s();
    auto reap = [&](int flags) {
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, flags)) > 0) ++reaped;
    };
    while (!g_stop) {
        const double t = now_s() - t0;
        if (t >= g_opt.duration || forked >= total) break;
        // Paced: child i is due at i / rate; behind schedule, no sleep.
        const double due = (double)forked / g_opt.rate;
        if (due > t) {
            sleep_s(std::min(due - t, 0.001));
            continue;
        }
        // The first child of each of `keep` equal slices of the storm's time stays.
        const bool keep = kept.size() < (size_t)g_opt.keep && t >= g_opt.duration * kept.size() / g_opt.keep;
        pid_t p = fork();
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != self) _exit(0);
            child(keep);
        }
        if (p < 0) {
            ++fork_failures;  // EAGAIN: too many at once; reap and go on
            reap(WNOHANG);
            continue;
        }
        ++forked;
        if (keep) kept.push_back(p);
        reap(WNOHANG);
        max_live = std::max<uint64_t>(max_live, forked - reaped);
    }
    const double seconds = now_s() - t0;
    // Wait for the short-lived ones: after this the tree is us and the kept.
    while (reaped + kept.size() < forked) {
        int st;
        if (waitpid(-1, &st, 0) < 0 && errno == ECHILD) break;
        ++reaped;
    }

    if (!g_opt.report.empty()) {
        std::string line;
        char buf[256];
        snprintf(buf, sizeof buf,
                 "{\"pid\":%d,\"children\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.1f,\"fork_failures\":%" PRIu64
                 ",\"max_live\":%" PRIu64 ",\"kept\":[",
                 (int)self, forked, seconds, seconds > 0 ? forked / seconds : 0.0, fork_failures, max_live);
        line = buf;
        for (size_t i = 0; i < kept.size(); ++i) line += (i ? "," : "") + std::to_string(kept[i]);
        line += "]}\n";
        int fd = g_opt.report == "-" ? 1 : open(g_opt.report.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, line.data(), line.size()) != (ssize_t)line.size()) {
            fprintf(stderr, "forkstorm: cannot write the report to %s: %s\n", g_opt.report.c_str(), strerror(errno));
            return 1;
        }
        if (fd != 1) close(fd);
    }
    while (!g_stop) sleep_s(0.1);
    for (pid_t p : kept) kill(p, SIGTERM);
    reap(0);
    return 0;
}
