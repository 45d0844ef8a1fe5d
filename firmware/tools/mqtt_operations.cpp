// Prints every MQTT operation the device core performs, one JSON object per line, so that
// the platform's tests can check the AWS IoT device policy against the firmware's own
// topics instead of a list typed again by hand.
//
// usage: mqtt-operations DEVICE_ID
//        mqtt-operations --claim TEMPLATE DEVICE_ID
//
// The scripted session runs the real DeviceCore over a recording transport: connect (with
// its Last Will), the online/discovery handshake, the command subscription, readings in the
// one-reading mode and in the default batched mode, every actuator's command delivered on
// the topic the platform publishes to and confirmed, and the clean shutdown. With --claim,
// the fleet provisioning exchange of a device holding only its batch's claim (claim.hpp),
// answered as AWS IoT answers it (the claim policy test reads it).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "claim.hpp"
#include "device.hpp"
#include "entity.hpp"
#include "json.hpp"
#include "topics.hpp"

namespace {

void print(es::JsonWriter& w) { std::printf("%s\n", w.str().c_str()); }

class RecordingTransport : public es::MqttTransport {
 public:
  void setListener(es::MqttListener* listener) override { listener_ = listener; }
  bool connect(const es::ConnectOptions& o, std::string&) override {
    es::JsonWriter w;
    // MqttTransport::connect always starts a clean session (interfaces.hpp).
    w.beginObject()
        .key("op").value("connect")
        .key("client_id").value(o.clientId)
        .key("clean_session").value(true);
    if (!o.willTopic.empty()) {
      w.key("will_topic").value(o.willTopic)
          .key("will_retain").value(o.willRetain)
          .key("will_qos").value(o.willQos);
    }
    w.endObject();
    print(w);
    pendingConnack_ = true;
    return true;
  }
  void disconnect() override { connected_ = false; }
  es::PublishResult publish(const std::string& topic, const std::string&, int qos,
                            bool retain) override {
    es::PublishResult r;
    if (!connected_) return r;
    es::JsonWriter w;
    w.beginObject()
        .key("op").value("publish")
        .key("topic").value(topic)
        .key("qos").value(qos)
        .key("retain").value(retain)
        .endObject();
    print(w);
    r.accepted = true;
    r.ackId = nextId_++;
    acks_.push_back(r.ackId);
    return r;
  }
  bool subscribe(const std::string& filter, int qos) override {
    es::JsonWriter w;
    w.beginObject().key("op").value("subscribe").key("filter").value(filter).key("qos").value(qos);
    w.endObject();
    print(w);
    return true;
  }
  void poll() override {
    if (pendingConnack_) {
      pendingConnack_ = false;
      connected_ = true;
      listener_->onConnected();
    }
    // The broker acknowledges every publish.
    std::vector<int> acks;
    acks.swap(acks_);
    for (int id : acks) listener_->onPublishAcked(id);
  }
  // A message the broker delivers to the device.
  void deliver(const std::string& topic, const std::string& payload) {
    es::JsonWriter w;
    w.beginObject().key("op").value("receive").key("topic").value(topic).endObject();
    print(w);
    listener_->onMessage(topic, payload);
  }

 private:
  es::MqttListener* listener_ = nullptr;
  bool pendingConnack_ = false;
  bool connected_ = false;
  int nextId_ = 1;
  std::vector<int> acks_;
};

class SteppedClock : public es::Clock {
 public:
  uint32_t mono = 0;
  uint32_t monotonicMs() override { return mono; }
  double epochSeconds() override { return 1700000000.0 + mono / 1000.0; }
};

class ConstantSensors : public es::SensorSource {
 public:
  bool read(const es::EntitySpec&, double, double& out) override {
    out = 1.5;
    return true;
  }
};

// A command each actuator accepts, so that the device confirms it by publishing its state.
std::string acceptedCommand(const es::EntitySpec& spec) {
  switch (spec.kind) {
    case es::EntityKind::Switch: return R"({"value":true,"command_id":"c-1"})";
    case es::EntityKind::Number: return R"({"value":)" + std::to_string(spec.min) + "}";
    case es::EntityKind::Text: return R"({"value":"x"})";
    case es::EntityKind::Sensor: break;
  }
  return "";
}

void session(const std::string& deviceId, uint32_t batch) {
  es::EntityRegistry entities;
  es::addDefaultEntities(entities);
  es::CoreOptions options;
  options.deviceId = deviceId;
  options.info = {"Recorder", "recorder", es::kFirmwareVersion};
  options.intervalMs = 1000;
  options.batch = batch;
  RecordingTransport mqtt;
  SteppedClock clock;
  es::SplitMix rng(1);
  ConstantSensors sensors;
  es::DeviceCore core(options, entities, mqtt, clock, rng, sensors, nullptr, nullptr);
  core.begin();
  // Long enough for a full batch and an aged partial one at the default batch settings.
  const uint32_t until = options.batchMaxAgeMs * 2 + options.intervalMs * batch;
  while (clock.mono < until) {
    core.loop();
    clock.mono += 100;
  }
  const es::Topics topics(deviceId);
  for (size_t i = 0; i < entities.size(); ++i) {
    const es::EntitySpec& spec = entities.spec(i);
    if (spec.kind == es::EntityKind::Sensor) continue;
    mqtt.deliver(topics.set(spec.id), acceptedCommand(spec));
    core.loop();
  }
  core.sampleNow();
  core.shutdown(0);
}

// The claim exchange, each request answered as AWS IoT accepts it.
int claimSession(const std::string& templateName, const std::string& deviceId) {
  RecordingTransport mqtt;
  class Memory : public es::KeyValueStore {
   public:
    bool get(const std::string&, std::string&) override { return false; }
    bool put(const std::string&, const std::string&) override { return true; }
    bool remove(const std::string&) override { return true; }
  } store;
  es::ClaimProvisioner claim(es::ClaimSettings{deviceId, templateName, "easysmart-claim-"}, mqtt,
                             store);
  std::string error;
  if (!claim.begin(error)) return 1;
  mqtt.poll();
  mqtt.deliver(es::ClaimTopics::createAccepted(),
               R"({"certificateId":"c","certificatePem":"p","privateKey":"k",)"
               R"("certificateOwnershipToken":"t"})");
  mqtt.deliver(es::ClaimTopics::registerThing(templateName) + "/accepted",
               "{\"thingName\":\"" + deviceId + "\"}");
  return claim.phase() == es::ClaimProvisioner::Phase::Provisioned ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--claim" && es::isValidDeviceId(argv[3])) {
    return claimSession(argv[2], argv[3]);
  }
  if (argc != 2 || !es::isValidDeviceId(argv[1])) {
    std::fprintf(stderr,
                 "usage: mqtt-operations DEVICE_ID\n       mqtt-operations --claim TEMPLATE DEVICE_ID\n");
    return 2;
  }
  session(argv[1], 1);
  session(argv[1], es::CoreOptions().batch);
  return 0;
}
