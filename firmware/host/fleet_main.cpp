// Fleet: many devices in one process, each the firmware core with its own MQTT connection,
// credentials, Last Will, retained status and discovery, and simulated machine. They share
// one thread: a single epoll loop services every connection (fleet_transport.hpp) and
// drives each core's loop(), so ten thousand devices cost kilobytes each instead of a
// process each. Devices come from a CSV file (device_id,username,password); the process
// prints one JSON line of fleet-wide counters every --stats-ms on stdout.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "config.hpp"
#include "device.hpp"
#include "fleet_transport.hpp"
#include "host_device.hpp"
#include "json.hpp"
#include "simulator.hpp"

namespace {

volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }

const char* kUsage =
    "usage: fleet --devices FILE.csv [--mqtt mqtt://127.0.0.1:1883]\n"
    "             [--interval-ms 10000] [--sensors 10] [--actuators 0|1] [--batch 10]\n"
    "             [--batch-age-ms 60000]\n"
    "             [--buffer 200] [--stats-ms 1000] [--start-over-ms 0]\n"
    "             [--backoff-base-ms 1000] [--backoff-max-ms 60000] [--seed N] [--type TYPE]\n"
    "             [--random-first-sample 0|1]\n"
    "FILE.csv: a header naming device_id, username and password, then one device a line.\n";

es_host::CommandLine cli("fleet", kUsage);

[[noreturn]] void usageError(const std::string& msg) { cli.fail(msg); }

struct Credentials {
  std::string deviceId;
  std::string username;
  std::string password;
};

std::vector<std::string> splitCsvLine(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

// Device ids, usernames and generated passwords never contain commas or quotes, so the
// file is read without CSV quoting; a line that does not fit is refused, not guessed at.
std::vector<Credentials> readDevices(const std::string& path) {
  std::ifstream in(path);
  if (!in) usageError("cannot read " + path);
  std::string line;
  if (!std::getline(in, line)) usageError(path + " is empty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const std::vector<std::string> header = splitCsvLine(line);
  int idCol = -1, userCol = -1, passCol = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "device_id") idCol = static_cast<int>(i);
    if (header[i] == "username") userCol = static_cast<int>(i);
    if (header[i] == "password") passCol = static_cast<int>(i);
  }
  if (idCol < 0 || userCol < 0 || passCol < 0) {
    usageError(path + ": the header must name device_id, username and password");
  }
  std::vector<Credentials> devices;
  size_t lineNo = 1;
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::vector<std::string> f = splitCsvLine(line);
    if (f.size() != header.size() || line.find('"') != std::string::npos) {
      usageError(path + ":" + std::to_string(lineNo) + ": expected " +
                 std::to_string(header.size()) + " unquoted fields");
    }
    Credentials c{f[static_cast<size_t>(idCol)], f[static_cast<size_t>(userCol)],
                  f[static_cast<size_t>(passCol)]};
    if (!es::isValidDeviceId(c.deviceId)) {
      usageError(path + ":" + std::to_string(lineNo) + ": invalid device id");
    }
    devices.push_back(std::move(c));
  }
  if (devices.empty()) usageError(path + " lists no device");
  return devices;
}

// A monitoring node: the reference device's three sensors plus further probes of the same
// machine ("temperature_2", "pressure_2", ...) until it has `sensors` sensors, so each
// sampling round is one reading of that many entities; with `actuators`, also the reference
// device's relay, setpoint and label.
void addFleetEntities(es::EntityRegistry& entities, uint32_t sensors, bool actuators) {
  static const char* kBases[] = {"temperature", "pressure", "vibration"};
  static const char* kNames[] = {"Temperature", "Pressure", "Vibration (RMS)"};
  static const char* kUnits[] = {"°C", "bar", "mm/s"};
  if (actuators) {
    es::addDefaultEntities(entities);
  } else {
    for (size_t base = 0; base < 3; ++base) {
      es::EntitySpec spec;
      spec.id = kBases[base];
      spec.kind = es::EntityKind::Sensor;
      spec.name = kNames[base];
      spec.unit = kUnits[base];
      entities.add(spec);
    }
  }
  for (uint32_t k = 3; k < sensors; ++k) {
    const size_t base = k % 3;
    const std::string probe = std::to_string(k / 3 + 1);
    es::EntitySpec spec;
    spec.id = std::string(kBases[base]) + "_" + probe;
    spec.kind = es::EntityKind::Sensor;
    spec.name = std::string(kNames[base]) + " " + probe;
    spec.unit = kUnits[base];
    entities.add(spec);
  }
}

struct Counters {
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t connectFailures = 0;
  uint64_t commands = 0;
  uint64_t rejectedCommands = 0;
};

// Counts what the devices report instead of printing ten thousand event streams.
class CountingSink : public es::EventSink {
 public:
  explicit CountingSink(Counters& counters) : c_(counters) {}
  void emit(const std::string& line) override {
    static const std::string kPrefix = "{\"event\":\"";
    if (line.compare(0, kPrefix.size(), kPrefix) != 0) return;
    const char* kind = line.c_str() + kPrefix.size();
    if (std::strncmp(kind, "connected\"", 10) == 0) ++c_.connects;
    else if (std::strncmp(kind, "disconnected\"", 13) == 0) ++c_.disconnects;
    else if (std::strncmp(kind, "connect_failed\"", 15) == 0) ++c_.connectFailures;
    else if (std::strncmp(kind, "command\"", 8) == 0) ++c_.commands;
    else if (std::strncmp(kind, "command_rejected\"", 17) == 0) ++c_.rejectedCommands;
  }

 private:
  Counters& c_;
};

struct FleetDevice {
  FleetDevice(const Credentials& creds, const es::CoreOptions& base, uint32_t sensors,
              bool withActuators, uint64_t seed, double startEpoch, es_host::Reactor& reactor,
              const es::BrokerUrl& url, es::Clock& clock, Counters& counters)
      : rng(seed),
        simRng(seed ^ 0x5DEECE66DULL),
        sim(simRng, startEpoch),
        sensorsSource(sim),
        actuators(sim),
        mqtt(reactor, url.host, url.port),
        sink(counters) {
    addFleetEntities(entities, sensors, withActuators);
    es::CoreOptions opt = base;
    opt.deviceId = creds.deviceId;
    opt.username = creds.username;
    opt.password = creds.password;
    opt.info.name = "Fleet " + creds.deviceId;
    core.reset(new es::DeviceCore(opt, entities, mqtt, clock, rng, sensorsSource, &actuators,
                                  &sink));
  }
  es::SplitMix rng;
  es::SplitMix simRng;
  es::Simulator sim;
  es::EntityRegistry entities;
  es_host::SimulatedSensors sensorsSource;
  es_host::SimulatedActuators actuators;
  es_host::FleetTransport mqtt;
  CountingSink sink;
  std::unique_ptr<es::DeviceCore> core;
  bool begun = false;
};

uint64_t mix(uint64_t x) {
  es::SplitMix m(x);
  return (static_cast<uint64_t>(m.nextU32()) << 32) | m.nextU32();
}

long residentKb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Three descriptors per device: its socket, and the socket pair libmosquitto opens for each
// client (mosquitto_new) to wake its loop. The limit is raised to what that needs, the hard
// one too when allowed (as root): at 20,000 only 6,665 of 10,000 devices could connect.
void ensureDescriptors(size_t devices) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t needed = static_cast<rlim_t>(devices) * 3 + 64;
  if (lim.rlim_cur < needed) {
    rlimit wanted = lim;
    wanted.rlim_cur = needed;
    if (wanted.rlim_max != RLIM_INFINITY && wanted.rlim_max < needed) wanted.rlim_max = needed;
    if (setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
      lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || lim.rlim_max > needed ? needed : lim.rlim_max;
      setrlimit(RLIMIT_NOFILE, &lim);
    }
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < needed) {
    std::fprintf(stderr,
                 "fleet: %zu devices need %llu descriptors but the limit is %llu (ulimit -n)\n",
                 devices, static_cast<unsigned long long>(needed),
                 static_cast<unsigned long long>(lim.rlim_cur));
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  cli.parse(argc, argv,
            {"devices", "mqtt", "interval-ms", "sensors", "actuators", "batch", "batch-age-ms",
             "buffer", "stats-ms", "start-over-ms", "backoff-base-ms", "backoff-max-ms", "seed",
             "type", "random-first-sample"});
  if (!cli.has("devices")) usageError("--devices FILE is required");
  es::BrokerUrl url;
  const std::string mqttUrl = cli.str("mqtt", "mqtt://127.0.0.1:1883");
  if (!es::parseBrokerUrl(mqttUrl, url) || url.tls) usageError("--mqtt expects mqtt://host:port");

  es::CoreOptions base;
  base.info.type = cli.str("type", "virtual-compressor");
  base.info.firmware = std::string(es::kFirmwareVersion) + "-fleet";
  base.intervalMs = cli.uint("interval-ms", 10000, 100, 3600000);
  const uint32_t sensors = cli.uint("sensors", 10, 3, 60);
  const bool withActuators = cli.uint("actuators", 0, 0, 1) == 1;
  base.batch = cli.uint("batch", sensors, 1, es::kMaxBatchReadings);
  base.batchMaxAgeMs =
      cli.uint("batch-age-ms", es::kDefaultBatchMaxAgeMs, 0, es::kMaxBatchAgeMs);
  base.bufferCapacity = cli.uint("buffer", 200, 1, 100000);
  // The ESP32's own reconnection settings (src/main.cpp) unless told otherwise.
  base.backoffBaseMs = cli.uint("backoff-base-ms", 1000, 1, 3600000);
  base.backoffCapMs = cli.uint("backoff-max-ms", 60000, 1, 3600000);
  // 0: every device takes its first sample at power-up (a fleet powered up together then
  // reports in the same instant every interval); 1, the firmware's default: at a random point
  // of its first interval.
  base.randomFirstSample = cli.uint("random-first-sample", 1, 0, 1) == 1;
  const uint32_t statsMs = cli.uint("stats-ms", 1000, 100, 3600000);
  const uint32_t startOverMs = cli.uint("start-over-ms", 0, 0, 3600000);

  const std::vector<Credentials> creds = readDevices(cli.str("devices", ""));
  ensureDescriptors(creds.size());

  // Started by Node (npm run fleet): die with it, as the virtual device does.
  es_host::followParent();
  es_host::onStopSignals(onSignal);

  es_host::HostClock clock;
  const uint64_t seed = es_host::seedOption(cli, clock.epochSeconds());
  es_host::Reactor reactor;
  Counters counters;
  const double startEpoch = clock.epochSeconds();
  std::vector<std::unique_ptr<FleetDevice>> devices;
  devices.reserve(creds.size());
  for (size_t i = 0; i < creds.size(); ++i) {
    devices.emplace_back(new FleetDevice(creds[i], base, sensors, withActuators, mix(seed + i), startEpoch,
                                         reactor, url, clock, counters));
  }

  auto printStats = [&](const char* event) {
    size_t begun = 0, online = 0, buffered = 0, inflight = 0;
    uint64_t sent = 0, dropped = 0;
    for (const auto& d : devices) {
      begun += d->begun ? 1 : 0;
      online += d->core->online() ? 1 : 0;
      sent += d->core->sent();
      buffered += d->core->buffered();
      dropped += d->core->dropped();
      inflight += d->core->inflight();
    }
    es::JsonWriter w;
    w.beginObject()
        .key("event").value(event)
        .key("at").value(clock.epochSeconds())
        .key("devices").value(static_cast<unsigned long long>(devices.size()))
        .key("started").value(static_cast<unsigned long long>(begun))
        .key("online").value(static_cast<unsigned long long>(online))
        .key("connects").value(static_cast<unsigned long long>(counters.connects))
        .key("disconnects").value(static_cast<unsigned long long>(counters.disconnects))
        .key("connect_failures").value(static_cast<unsigned long long>(counters.connectFailures))
        .key("commands").value(static_cast<unsigned long long>(counters.commands))
        .key("rejected_commands").value(static_cast<unsigned long long>(counters.rejectedCommands))
        .key("sent").value(static_cast<unsigned long long>(sent))
        .key("buffered").value(static_cast<unsigned long long>(buffered))
        .key("inflight").value(static_cast<unsigned long long>(inflight))
        .key("dropped").value(static_cast<unsigned long long>(dropped))
        .key("rss_kb").value(static_cast<long long>(residentKb()))
        .key("cpu_s").value(cpuSeconds())
        .endObject();
    std::fputs(w.str().c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };

  {
    es::JsonWriter w;
    w.beginObject()
        .key("event").value("started")
        .key("devices").value(static_cast<unsigned long long>(devices.size()))
        .key("mqtt").value(mqttUrl)
        .key("interval_ms").value(static_cast<unsigned long long>(base.intervalMs))
        .key("sensors").value(static_cast<unsigned long long>(sensors))
        .key("batch").value(static_cast<unsigned long long>(base.batch))
        .key("pid").value(static_cast<long long>(getpid()))
        .endObject();
    std::fputs(w.str().c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  // The cores run every kTickMs: sampling every few seconds and backoff delays of a second
  // or more need no finer steps, and 10,000 cores a tick stay a small share of a core.
  constexpr uint32_t kTickMs = 50;
  const uint32_t started = clock.monotonicMs();
  uint32_t lastTick = started - kTickMs;
  uint32_t lastHousekeeping = started;
  uint32_t lastStats = started;
  size_t nextToBegin = 0;
  while (!gStop) {
    const uint32_t now = clock.monotonicMs();
    // Devices power up spread over --start-over-ms (all at once with 0).
    while (nextToBegin < devices.size() &&
           (startOverMs == 0 ||
            static_cast<uint64_t>(now - started) * devices.size() >=
                static_cast<uint64_t>(nextToBegin) * startOverMs)) {
      devices[nextToBegin]->core->begin();
      devices[nextToBegin]->begun = true;
      ++nextToBegin;
    }
    if (now - lastTick >= kTickMs) {
      lastTick = now;
      for (size_t i = 0; i < nextToBegin; ++i) devices[i]->core->loop();
      reactor.flushWrites();
    }
    if (now - lastHousekeeping >= 1000) {
      lastHousekeeping = now;
      reactor.housekeeping();
    }
    if (now - lastStats >= statsMs) {
      lastStats = now;
      printStats("fleet");
    }
    const uint32_t elapsed = clock.monotonicMs() - lastTick;
    reactor.run(elapsed >= kTickMs ? 0 : static_cast<int>(kTickMs - elapsed));
  }

  // A clean stop of every device: waiting readings, then a retained "offline".
  for (auto& d : devices) {
    d->mqtt.setSelfServicing(true);
    if (d->begun) d->core->shutdown(500);
  }
  printStats("stopped");
  return 0;
}
