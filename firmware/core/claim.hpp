// Fleet provisioning by claim (AWS IoT): a device registered in bulk ships with its batch's
// claim certificate, which may do nothing but this exchange (infra/iot-fleet-provisioning.yml).
// At its first connection the device asks AWS IoT for its own certificate and key
// ($aws/certificates/create/json), then asks the platform's provisioning template to
// register it under its device id ($aws/provisioning-templates/<name>/provision/json); the
// platform's pre-provisioning hook admits only a device id registered with that claim, once.
// On success the certificate and key are stored and the device connects with them from then
// on, as a device registered alone does (docs/deploy.md, "Fleet provisioning by claim").
//
// The core runs the MQTT exchange over any MqttTransport; presenting the claim certificate
// (and later the device's own) on the TLS connection is the platform adapter's part.
#pragma once

#include <string>

#include "backoff.hpp"
#include "interfaces.hpp"

namespace es {

struct ClaimSettings {
  std::string deviceId;
  // The provisioning template the bulk registration named (`provisioning_template`).
  std::string templateName;
  // The claim policy allows only client ids with this prefix (`client_id_prefix`).
  std::string clientIdPrefix = "easysmart-claim-";
};

// Where the device's own credential is kept once it has one: the configuration's own keys
// (config.hpp), so the next start connects with it as with one set at the console.
constexpr const char* kDeviceCertificateIdKey = "cert_id";
constexpr const char* kDeviceCertificatePemKey = "client_cert";
constexpr const char* kDevicePrivateKeyKey = "client_key";

// The AWS IoT device provisioning MQTT API's topics (JSON payloads).
struct ClaimTopics {
  static std::string createCertificate() { return "$aws/certificates/create/json"; }
  static std::string createAccepted() { return createCertificate() + "/accepted"; }
  static std::string createRejected() { return createCertificate() + "/rejected"; }
  static std::string registerThing(const std::string& templateName) {
    return "$aws/provisioning-templates/" + templateName + "/provision/json";
  }
};

class ClaimProvisioner : public MqttListener {
 public:
  enum class Phase { Idle, Connecting, CreatingCertificate, Registering, Provisioned, Failed };

  ClaimProvisioner(ClaimSettings settings, MqttTransport& mqtt, KeyValueStore& store);

  // True when the store already holds the device's own certificate: no claim is needed.
  static bool hasOwnCertificate(KeyValueStore& store);

  // The client id of the claim session: the prefix and the device id, cut to MQTT's and
  // AWS IoT's 128 characters.
  std::string clientId() const;

  // Connects with the claim (the transport presents the claim certificate); the exchange
  // then runs from the transport's callbacks (poll()).
  bool begin(std::string& error);

  Phase phase() const { return phase_; }
  // Why the exchange failed (Phase::Failed), e.g. "registration_rejected: AccessDenied".
  const std::string& error() const { return error_; }

  void onConnected() override;
  void onDisconnected(const std::string& reason) override;
  void onMessage(const std::string& topic, const std::string& payload) override;
  void onPublishAcked(int) override {}

 private:
  void fail(const std::string& error);
  void onCertificate(const std::string& payload);
  void onRegistered(const std::string& payload);

  ClaimSettings settings_;
  MqttTransport& mqtt_;
  KeyValueStore& store_;
  Phase phase_ = Phase::Idle;
  std::string error_;
  std::string certificateId_;
  std::string certificatePem_;
  std::string privateKey_;
};

// Runs the exchange until the device holds its own certificate: an attempt that fails
// (no network yet, the platform's hook refusing, a lost connection) or stalls is tried again
// after the core's backoff, so a device that boots before its network, or before the
// platform's registration reached AWS IoT, gets there by itself.
class ClaimRunner {
 public:
  // A step with no answer for this long is given up (AWS IoT answers in well under that).
  static constexpr uint32_t kStepTimeoutMs = 60000;

  ClaimRunner(ClaimSettings settings, MqttTransport& mqtt, KeyValueStore& store, Clock& clock,
              Random& rng, EventSink* events, uint32_t backoffBaseMs = 1000,
              uint32_t backoffCapMs = 300000);

  // One pass of the main loop. True once the device's own certificate is stored: the caller
  // restarts so that the device connects with it.
  bool loop();

  const ClaimProvisioner& provisioner() const { return provisioner_; }
  uint32_t attempts() const { return attempts_; }

 private:
  void start(uint32_t now);
  void retryLater(const std::string& error);

  MqttTransport& mqtt_;
  Clock& clock_;
  EventSink* events_;
  ClaimProvisioner provisioner_;
  Backoff backoff_;
  bool waiting_ = false;
  uint32_t waitFromMs_ = 0;
  uint32_t waitMs_ = 0;
  uint32_t stepSinceMs_ = 0;
  ClaimProvisioner::Phase lastPhase_ = ClaimProvisioner::Phase::Idle;
  uint32_t attempts_ = 0;
};

}  // namespace es
