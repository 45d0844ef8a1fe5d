// Virtual device: the firmware core over libmosquitto with simulated sensors, so the
// platform can be exercised end to end without hardware. Prints one JSON object per line
// on stdout for every event; diagnostics go to stderr.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "command_line.hpp"
#include "config.hpp"
#include "device.hpp"
#include "host_device.hpp"
#include "json.hpp"
#include "mosquitto_transport.hpp"
#include "simulator.hpp"

namespace {

volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }

class StdoutSink : public es::EventSink {
 public:
  void emit(const std::string& line) override {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);  // followers read line by line through a pipe
  }
};

// Keeps the last confirmed edge model in a file, replaced atomically (written aside, then
// renamed), so a crash while saving leaves the previous model intact.
class FileModelStorage : public es::ModelStorage {
 public:
  explicit FileModelStorage(std::string path) : path_(std::move(path)) {}
  bool load(std::vector<uint8_t>& out) override {
    std::FILE* f = std::fopen(path_.c_str(), "rb");
    if (!f) return false;
    out.clear();
    int c;
    while ((c = std::fgetc(f)) != EOF && out.size() <= es::kEdgeMaxBytes) {
      out.push_back(static_cast<uint8_t>(c));
    }
    std::fclose(f);
    return true;
  }
  bool save(const std::vector<uint8_t>& bytes) override {
    const std::string tmp = path_ + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return false;
    const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    const bool closed = std::fflush(f) == 0 && fsync(fileno(f)) == 0 && std::fclose(f) == 0;
    return written && closed && std::rename(tmp.c_str(), path_.c_str()) == 0;
  }

 private:
  std::string path_;
};

const char* kUsage =
    "usage: virtual-device --device-id ID [--username U] [--password P]\n"
    "                      [--mqtt mqtt://127.0.0.1:1883 | mqtts://host:8883]\n"
    "                      [--ca FILE] [--cert FILE] [--key FILE]\n"
    "                      [--interval-ms N] [--batch N] [--batch-age-ms N] [--buffer N]\n"
    "                      [--stats-ms N]\n"
    "                      [--fault spike|drift|stuck] [--fault-after-s N]\n"
    "                      [--fault-entity temperature|pressure|vibration]\n"
    "                      [--degrade-per-hour X] [--backoff-base-ms N] [--backoff-max-ms N]\n"
    "                      [--name NAME] [--type TYPE] [--seed N] [--model-file FILE]\n";

es_host::CommandLine cli("virtual-device", kUsage);

[[noreturn]] void usageError(const std::string& msg) { cli.fail(msg); }

}  // namespace

int main(int argc, char** argv) {
  cli.parse(argc, argv,
            {"device-id", "username", "password", "mqtt", "ca", "cert", "key", "interval-ms",
             "batch", "batch-age-ms", "buffer", "stats-ms", "fault", "fault-after-s",
             "fault-entity", "degrade-per-hour", "backoff-base-ms", "backoff-max-ms", "name",
             "type", "seed", "model-file"});

  const std::string deviceId = cli.str("device-id", "");
  if (!es::isValidDeviceId(deviceId)) usageError("--device-id must match [a-zA-Z0-9:_-]{1,128}");
  es::BrokerUrl url;
  const std::string mqttUrl = cli.str("mqtt", "mqtt://127.0.0.1:1883");
  if (!es::parseBrokerUrl(mqttUrl, url)) usageError("--mqtt expects mqtt://host:port or mqtts://host:port");

  es::FaultKind fault = es::FaultKind::None;
  if (!es::parseFaultKind(cli.str("fault", "none"), fault)) {
    usageError("--fault expects spike, drift or stuck");
  }
  const std::string faultEntity = cli.str("fault-entity", "temperature");
  if (faultEntity != "temperature" && faultEntity != "pressure" && faultEntity != "vibration") {
    usageError("--fault-entity expects temperature, pressure or vibration");
  }
  double faultAfter = 0;
  if (cli.has("fault-after-s") && !es_host::parseNumber(cli.str("fault-after-s", ""), 0, 1e7, faultAfter)) {
    usageError("--fault-after-s expects seconds >= 0");
  }
  double degrade = 0.05;
  if (cli.has("degrade-per-hour") && !es_host::parseNumber(cli.str("degrade-per-hour", ""), 0, 1e6, degrade)) {
    usageError("--degrade-per-hour expects a number >= 0");
  }

  es::CoreOptions opt;
  opt.deviceId = deviceId;
  // The platform's convention is username == device id, so it is the default.
  opt.username = cli.str("username", deviceId);
  opt.password = cli.str("password", "");
  opt.info.name = cli.str("name", "Virtual " + deviceId);
  opt.info.type = cli.str("type", "virtual-compressor");
  opt.info.firmware = std::string(es::kFirmwareVersion) + "-host";
  opt.intervalMs = cli.uint("interval-ms", 1000, 10, 3600000);
  opt.batch = cli.uint("batch", es::kDefaultBatchReadings, 1, 500);
  opt.batchMaxAgeMs =
      cli.uint("batch-age-ms", es::kDefaultBatchMaxAgeMs, 0, es::kMaxBatchAgeMs);
  opt.bufferCapacity = cli.uint("buffer", 1000, 1, 10000000);
  opt.statsIntervalMs = cli.uint("stats-ms", 1000, 0, 3600000);
  opt.backoffBaseMs = cli.uint("backoff-base-ms", 250, 1, 3600000);
  opt.backoffCapMs = cli.uint("backoff-max-ms", 5000, 1, 3600000);
  opt.keepAliveSeconds = 10;

  es_host::TlsFiles tls{cli.str("ca", ""), cli.str("cert", ""), cli.str("key", "")};
  if (tls.certFile.empty() != tls.keyFile.empty()) usageError("--cert and --key go together");

  es_host::followParent();
  es_host::onStopSignals(onSignal);

  es_host::HostClock clock;
  const uint64_t seed = es_host::seedOption(cli, clock.epochSeconds());
  es::SplitMix rng(seed);
  es::SplitMix simRng(seed ^ 0x5DEECE66DULL);
  const double start = clock.epochSeconds();
  es::Simulator sim(simRng, start);
  sim.setDegradationPerHour(degrade);
  if (fault != es::FaultKind::None) sim.setFault(fault, start + faultAfter, faultEntity);

  es::EntityRegistry entities;
  es::addDefaultEntities(entities);
  es_host::SimulatedSensors sensors(sim);
  es_host::SimulatedActuators actuators(sim);
  StdoutSink events;
  es_host::MosquittoTransport mqtt(url.host, url.port, url.tls, tls);
  es::DeviceCore core(opt, entities, mqtt, clock, rng, sensors, &actuators, &events);
  std::unique_ptr<FileModelStorage> modelStorage;
  if (cli.has("model-file")) {
    modelStorage.reset(new FileModelStorage(cli.str("model-file", "")));
    core.edge().setStorage(modelStorage.get());
  }

  {
    es::JsonWriter w;
    w.beginObject()
        .key("event").value("started")
        .key("device_id").value(deviceId)
        .key("mqtt").value(mqttUrl)
        .key("interval_ms").value(static_cast<unsigned long long>(opt.intervalMs))
        .key("batch").value(static_cast<unsigned long long>(opt.batch))
        .key("batch_age_ms").value(static_cast<unsigned long long>(opt.batchMaxAgeMs))
        .key("buffer").value(static_cast<unsigned long long>(opt.bufferCapacity))
        .key("fault").value(es::faultKindName(fault))
        .key("pid").value(static_cast<long long>(getpid()))
        .endObject();
    events.emit(w.str());
  }

  core.begin();
  bool faultAnnounced = false;
  while (!gStop) {
    core.loop();
    if (!faultAnnounced && sim.faultActive(clock.epochSeconds())) {
      faultAnnounced = true;
      es::JsonWriter w;
      w.beginObject()
          .key("event").value("fault")
          .key("kind").value(es::faultKindName(fault))
          .key("entity_id").value(faultEntity)
          .endObject();
      events.emit(w.str());
    }
  }
  core.shutdown(1000);
  return 0;
}
