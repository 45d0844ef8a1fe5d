#include "claim.hpp"

#include <utility>

#include "json.hpp"

namespace es {

namespace {

constexpr size_t kMaxClientIdLength = 128;

// A string member of an object, or empty.
std::string stringMember(const JsonValue& object, const char* key) {
  const JsonValue* v = object.find(key);
  return v != nullptr && v->isString() ? v->asString() : std::string();
}

// "<errorCode>" of a rejected answer ({"statusCode", "errorCode", "errorMessage"}).
std::string rejection(const std::string& payload) {
  JsonValue answer;
  if (!parseJson(payload, answer).ok || !answer.isObject()) return "unreadable";
  const std::string code = stringMember(answer, "errorCode");
  return code.empty() ? "unknown" : code;
}

}  // namespace

ClaimProvisioner::ClaimProvisioner(ClaimSettings settings, MqttTransport& mqtt,
                                   KeyValueStore& store)
    : settings_(std::move(settings)), mqtt_(mqtt), store_(store) {}

bool ClaimProvisioner::hasOwnCertificate(KeyValueStore& store) {
  std::string pem;
  std::string key;
  return store.get(kDeviceCertificatePemKey, pem) && !pem.empty() &&
         store.get(kDevicePrivateKeyKey, key) && !key.empty();
}

std::string ClaimProvisioner::clientId() const {
  return (settings_.clientIdPrefix + settings_.deviceId).substr(0, kMaxClientIdLength);
}

bool ClaimProvisioner::begin(std::string& error) {
  error_.clear();
  mqtt_.setListener(this);
  ConnectOptions options;
  options.clientId = clientId();
  // No Last Will: the claim session is no device's presence, and its policy allows none.
  options.willTopic.clear();
  phase_ = Phase::Connecting;
  if (!mqtt_.connect(options, error)) {
    fail("connect_failed: " + error);
    return false;
  }
  return true;
}

void ClaimProvisioner::onConnected() {
  if (phase_ != Phase::Connecting) return;
  // Subscribed before each request is published: the answers come only once, on this
  // connection (the device provisioning MQTT API).
  const std::string registerThing = ClaimTopics::registerThing(settings_.templateName);
  for (const std::string& filter :
       {ClaimTopics::createAccepted(), ClaimTopics::createRejected(), registerThing + "/accepted",
        registerThing + "/rejected"}) {
    if (!mqtt_.subscribe(filter, 1)) return fail("subscribe_failed");
  }
  phase_ = Phase::CreatingCertificate;
  if (!mqtt_.publish(ClaimTopics::createCertificate(), "{}", 1, false).accepted) {
    fail("publish_failed");
  }
}

void ClaimProvisioner::onDisconnected(const std::string& reason) {
  if (phase_ == Phase::Provisioned || phase_ == Phase::Failed || phase_ == Phase::Idle) return;
  fail("disconnected: " + reason);
}

void ClaimProvisioner::onMessage(const std::string& topic, const std::string& payload) {
  const std::string registerThing = ClaimTopics::registerThing(settings_.templateName);
  if (phase_ == Phase::CreatingCertificate) {
    if (topic == ClaimTopics::createAccepted()) return onCertificate(payload);
    if (topic == ClaimTopics::createRejected()) {
      return fail("certificate_rejected: " + rejection(payload));
    }
  } else if (phase_ == Phase::Registering) {
    if (topic == registerThing + "/accepted") return onRegistered(payload);
    if (topic == registerThing + "/rejected") {
      return fail("registration_rejected: " + rejection(payload));
    }
  }
  // Anything else (a late or repeated answer) is not part of this step.
}

void ClaimProvisioner::onCertificate(const std::string& payload) {
  JsonValue answer;
  if (!parseJson(payload, answer).ok || !answer.isObject()) return fail("malformed_certificate");
  certificateId_ = stringMember(answer, "certificateId");
  certificatePem_ = stringMember(answer, "certificatePem");
  privateKey_ = stringMember(answer, "privateKey");
  const std::string token = stringMember(answer, "certificateOwnershipToken");
  if (certificateId_.empty() || certificatePem_.empty() || privateKey_.empty() || token.empty()) {
    return fail("malformed_certificate");
  }
  JsonWriter request;
  request.beginObject()
      .key("certificateOwnershipToken").value(token)
      .key("parameters").beginObject().key("DeviceId").value(settings_.deviceId).endObject()
      .endObject();
  phase_ = Phase::Registering;
  const std::string topic = ClaimTopics::registerThing(settings_.templateName);
  if (!mqtt_.publish(topic, request.str(), 1, false).accepted) fail("publish_failed");
}

void ClaimProvisioner::onRegistered(const std::string& payload) {
  JsonValue answer;
  if (!parseJson(payload, answer).ok || !answer.isObject()) return fail("malformed_registration");
  // The template names the thing after the device id; anything else is not this device.
  const std::string thing = stringMember(answer, "thingName");
  if (!thing.empty() && thing != settings_.deviceId) return fail("registered_as_another_thing");
  // The key first, the certificate after it: a device that lost power in between finds no
  // complete credential and runs the exchange again.
  if (!store_.put(kDevicePrivateKeyKey, privateKey_) ||
      !store_.put(kDeviceCertificatePemKey, certificatePem_) ||
      !store_.put(kDeviceCertificateIdKey, certificateId_)) {
    return fail("store_failed");
  }
  privateKey_.clear();
  phase_ = Phase::Provisioned;
  mqtt_.disconnect();
}

void ClaimProvisioner::fail(const std::string& error) {
  phase_ = Phase::Failed;
  error_ = error;
  privateKey_.clear();
  mqtt_.disconnect();
}

ClaimRunner::ClaimRunner(ClaimSettings settings, MqttTransport& mqtt, KeyValueStore& store,
                         Clock& clock, Random& rng, EventSink* events, uint32_t backoffBaseMs,
                         uint32_t backoffCapMs)
    : mqtt_(mqtt),
      clock_(clock),
      events_(events),
      provisioner_(std::move(settings), mqtt, store),
      backoff_(backoffBaseMs, backoffCapMs, rng) {}

bool ClaimRunner::loop() {
  using Phase = ClaimProvisioner::Phase;
  const uint32_t now = clock_.monotonicMs();
  if (waiting_) {
    if (now - waitFromMs_ < waitMs_) return false;
    waiting_ = false;
    start(now);
    return false;
  }
  Phase phase = provisioner_.phase();
  if (phase == Phase::Idle) {
    start(now);
    return false;
  }
  if (phase != Phase::Provisioned && phase != Phase::Failed) {
    mqtt_.poll();
    phase = provisioner_.phase();
  }
  if (phase == Phase::Provisioned) return true;
  if (phase == Phase::Failed) {
    retryLater(provisioner_.error());
  } else if (phase != lastPhase_) {
    lastPhase_ = phase;
    stepSinceMs_ = now;
  } else if (now - stepSinceMs_ >= kStepTimeoutMs) {
    mqtt_.disconnect();
    retryLater("step_timed_out");
  }
  return false;
}

void ClaimRunner::start(uint32_t now) {
  ++attempts_;
  stepSinceMs_ = now;
  lastPhase_ = ClaimProvisioner::Phase::Connecting;
  std::string error;
  // begin() starts the exchange afresh whatever step an earlier attempt stopped at.
  if (!provisioner_.begin(error)) retryLater(provisioner_.error());
}

void ClaimRunner::retryLater(const std::string& error) {
  waiting_ = true;
  waitFromMs_ = clock_.monotonicMs();
  waitMs_ = backoff_.nextDelayMs();
  if (events_) {
    JsonWriter w;
    w.beginObject()
        .key("event").value("claim_failed")
        .key("error").value(error)
        .key("retry_in_ms").value(waitMs_)
        .endObject();
    events_->emit(w.str());
  }
}

}  // namespace es
