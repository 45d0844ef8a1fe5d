// Command-line options of the host programs (virtual device, fleet): `--key value` or
// `--key=value`, each key from a known list; anything else ends the program with its usage.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <string>

namespace es_host {

inline bool parseNumber(const std::string& s, double lo, double hi, double& out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) return false;
  out = v;
  return true;
}

class CommandLine {
 public:
  CommandLine(const char* program, const char* usage) : program_(program), usage_(usage) {}

  // -h / --help prints the usage and exits 0.
  void parse(int argc, char** argv, std::initializer_list<const char*> known) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(usage_, stderr);
        std::exit(0);
      }
      if (a.compare(0, 2, "--") != 0) fail("unexpected argument '" + a + "'");
      a = a.substr(2);
      std::string value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      } else {
        if (i + 1 >= argc) fail("--" + a + " needs a value");
        value = argv[++i];
      }
      bool ok = false;
      for (const char* k : known) ok = ok || a == k;
      if (!ok) fail("unknown option --" + a);
      values_[a] = value;
    }
  }

  [[noreturn]] void fail(const std::string& msg) const {
    std::fprintf(stderr, "%s: %s\n%s", program_, msg.c_str(), usage_);
    std::exit(2);
  }

  bool has(const char* k) const { return values_.count(k) > 0; }

  std::string str(const char* k, const std::string& def) const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }

  uint32_t uint(const char* k, uint32_t def, uint32_t lo, uint32_t hi) const {
    auto it = values_.find(k);
    if (it == values_.end()) return def;
    double v;
    if (!parseNumber(it->second, lo, hi, v) || v != std::floor(v)) {
      fail(std::string("--") + k + " expects an integer in " + std::to_string(lo) + ".." +
           std::to_string(hi));
    }
    return static_cast<uint32_t>(v);
  }

 private:
  const char* program_;
  const char* usage_;
  std::map<std::string, std::string> values_;
};

// When started from Node (EASYSMART_PARENT_PID), die with that process: its being SIGKILLed
// must look to the broker exactly like the device being SIGKILLed (the LWT fires).
inline void followParent() {
  const char* ppid = std::getenv("EASYSMART_PARENT_PID");
  if (!ppid) return;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (std::to_string(getppid()) != ppid) std::_Exit(1);
}

// SIGINT and SIGTERM call `onStop` (the program then stops its devices cleanly); a peer
// closing a socket is not fatal.
inline void onStopSignals(void (*onStop)(int)) {
  struct sigaction sa {};
  sa.sa_handler = onStop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// --seed, or else one from the clock and the pid, so two runs differ.
inline uint64_t seedOption(const CommandLine& cli, double epochSeconds) {
  if (cli.has("seed")) return std::strtoull(cli.str("seed", "").c_str(), nullptr, 10);
  return static_cast<uint64_t>(epochSeconds * 1000) ^ (static_cast<uint64_t>(getpid()) << 32);
}

}  // namespace es_host
