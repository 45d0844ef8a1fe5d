#include <doctest/doctest.h>

#include "claim.hpp"
#include "config.hpp"
#include "fakes.hpp"

using es_test::EventLog;
using es_test::FakeClock;
using es_test::FakeTransport;
using es_test::MemoryStore;
using es_test::ScriptedRandom;

namespace {

const char* kTemplate = "easysmart-prod-fleet";
const char* kRegister = "$aws/provisioning-templates/easysmart-prod-fleet/provision/json";

const char* kCertificateAnswer =
    R"({"certificateId":"abc123","certificatePem":"-----BEGIN CERTIFICATE-----\nX\n",)"
    R"("privateKey":"-----BEGIN RSA PRIVATE KEY-----\nK\n","certificateOwnershipToken":"tok-1"})";

struct Exchange {
  FakeTransport mqtt;
  MemoryStore store;
  es::ClaimProvisioner claim{es::ClaimSettings{"PUMP_0001", kTemplate, "easysmart-claim-"}, mqtt,
                             store};

  void connect() {
    std::string error;
    REQUIRE(claim.begin(error));
    mqtt.poll();
  }
};

}  // namespace

TEST_CASE("claim: certificate, then RegisterThing, then the device's own credential is kept") {
  Exchange x;
  CHECK_FALSE(es::ClaimProvisioner::hasOwnCertificate(x.store));
  x.connect();
  CHECK(x.mqtt.lastOptions.clientId == "easysmart-claim-PUMP_0001");
  CHECK(x.mqtt.lastOptions.willTopic.empty());
  // Every answer topic is subscribed before the first request goes out.
  CHECK(x.mqtt.subscriptions == std::vector<std::string>{
                                    "$aws/certificates/create/json/accepted",
                                    "$aws/certificates/create/json/rejected",
                                    std::string(kRegister) + "/accepted",
                                    std::string(kRegister) + "/rejected"});
  REQUIRE(x.mqtt.published.size() == 1);
  CHECK(x.mqtt.published[0].topic == "$aws/certificates/create/json");
  CHECK(x.mqtt.published[0].payload == "{}");
  CHECK_FALSE(x.mqtt.published[0].retain);
  CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::CreatingCertificate);

  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  REQUIRE(x.mqtt.published.size() == 2);
  CHECK(x.mqtt.published[1].topic == kRegister);
  CHECK(x.mqtt.published[1].payload ==
        R"({"certificateOwnershipToken":"tok-1","parameters":{"DeviceId":"PUMP_0001"}})");
  CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::Registering);
  // Nothing is stored before the platform admitted the device.
  CHECK(x.store.data.empty());

  x.mqtt.listener->onMessage(std::string(kRegister) + "/accepted",
                             R"({"deviceConfiguration":{},"thingName":"PUMP_0001"})");
  CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::Provisioned);
  CHECK(x.store.data[es::kDeviceCertificateIdKey] == "abc123");
  CHECK(x.store.data[es::kDeviceCertificatePemKey] == "-----BEGIN CERTIFICATE-----\nX\n");
  CHECK(x.store.data[es::kDevicePrivateKeyKey] == "-----BEGIN RSA PRIVATE KEY-----\nK\n");
  CHECK(es::ClaimProvisioner::hasOwnCertificate(x.store));
  // The claim session ends: the device reconnects with its own certificate.
  CHECK_FALSE(x.mqtt.isConnected);
}

TEST_CASE("claim: a refused registration (the platform's hook) fails and keeps nothing") {
  Exchange x;
  x.connect();
  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  x.mqtt.listener->onMessage(
      std::string(kRegister) + "/rejected",
      R"({"statusCode":403,"errorCode":"AccessDenied","errorMessage":"Pre-provisioning hook"})");
  CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::Failed);
  CHECK(x.claim.error() == "registration_rejected: AccessDenied");
  CHECK(x.store.data.empty());
  CHECK_FALSE(x.mqtt.isConnected);
}

TEST_CASE("claim: a refused certificate, a malformed answer or a lost connection fail clearly") {
  {
    Exchange x;
    x.connect();
    x.mqtt.listener->onMessage("$aws/certificates/create/json/rejected",
                               R"({"statusCode":400,"errorCode":"InvalidPayload"})");
    CHECK(x.claim.error() == "certificate_rejected: InvalidPayload");
    CHECK(x.mqtt.published.size() == 1);
  }
  {
    Exchange x;
    x.connect();
    // No ownership token: RegisterThing could not be asked.
    x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted",
                               R"({"certificateId":"a","certificatePem":"p","privateKey":"k"})");
    CHECK(x.claim.error() == "malformed_certificate");
    CHECK(x.mqtt.published.size() == 1);
  }
  {
    Exchange x;
    x.connect();
    x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", "not json");
    CHECK(x.claim.error() == "malformed_certificate");
  }
  {
    Exchange x;
    x.connect();
    x.mqtt.dropConnection();
    CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::Failed);
    CHECK(x.claim.error() == "disconnected: connection_lost");
  }
  {
    Exchange x;
    x.mqtt.refuse = true;
    std::string error;
    CHECK_FALSE(x.claim.begin(error));
    CHECK(x.claim.error() == "connect_failed: connection_refused");
  }
}

TEST_CASE("claim: an answer for another thing, or out of turn, is not taken") {
  Exchange x;
  x.connect();
  // A registration answer before the certificate: ignored.
  x.mqtt.listener->onMessage(std::string(kRegister) + "/accepted", R"({"thingName":"PUMP_0001"})");
  CHECK(x.claim.phase() == es::ClaimProvisioner::Phase::CreatingCertificate);
  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  x.mqtt.listener->onMessage(std::string(kRegister) + "/accepted", R"({"thingName":"PUMP_0002"})");
  CHECK(x.claim.error() == "registered_as_another_thing");
  CHECK(x.store.data.empty());
}

TEST_CASE("claim: the client id keeps the reserved prefix and fits 128 characters") {
  FakeTransport mqtt;
  MemoryStore store;
  const std::string longId(128, 'd');
  es::ClaimProvisioner claim(es::ClaimSettings{longId, kTemplate, "easysmart-claim-"}, mqtt, store);
  CHECK(claim.clientId().size() == 128);
  CHECK(claim.clientId().rfind("easysmart-claim-", 0) == 0);
}

TEST_CASE("claim: a failed store keeps the device unprovisioned") {
  class FullStore : public MemoryStore {
   public:
    bool put(const std::string&, const std::string&) override { return false; }
  };
  FakeTransport mqtt;
  FullStore store;
  es::ClaimProvisioner claim(es::ClaimSettings{"PUMP_0001", kTemplate, "easysmart-claim-"}, mqtt,
                             store);
  std::string error;
  REQUIRE(claim.begin(error));
  mqtt.poll();
  mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  mqtt.listener->onMessage(std::string(kRegister) + "/accepted", R"({"thingName":"PUMP_0001"})");
  CHECK(claim.error() == "store_failed");
  CHECK_FALSE(es::ClaimProvisioner::hasOwnCertificate(store));
}

TEST_CASE("claim: the credential lands where the configuration reads it") {
  Exchange x;
  x.connect();
  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  x.mqtt.listener->onMessage(std::string(kRegister) + "/accepted", R"({"thingName":"PUMP_0001"})");
  x.store.data["device_id"] = "PUMP_0001";
  const es::DeviceConfig config = es::loadConfig(x.store);
  CHECK(config.clientCert == "-----BEGIN CERTIFICATE-----\nX\n");
  CHECK(config.clientKey == "-----BEGIN RSA PRIVATE KEY-----\nK\n");
}

namespace {

// The runner over a scripted backoff: each draw is the top of its bound (1, 2, 4, 8 s).
struct Runner {
  FakeTransport mqtt;
  MemoryStore store;
  FakeClock clock;
  ScriptedRandom random;
  EventLog events;
  es::ClaimRunner runner{es::ClaimSettings{"PUMP_0001", kTemplate, "easysmart-claim-"},
                         mqtt,
                         store,
                         clock,
                         random,
                         &events,
                         1000,
                         8000};
  Runner() { random.values = {1000, 2000, 4000, 8000}; }
};

}  // namespace

TEST_CASE("claim runner: a refused attempt is tried again after the backoff, not before") {
  Runner x;
  CHECK_FALSE(x.runner.loop());  // connects
  CHECK_FALSE(x.runner.loop());  // CONNACK: the certificate is asked for
  CHECK(x.runner.provisioner().phase() == es::ClaimProvisioner::Phase::CreatingCertificate);
  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  x.mqtt.listener->onMessage(std::string(kRegister) + "/rejected",
                             R"({"statusCode":403,"errorCode":"AccessDenied"})");
  CHECK_FALSE(x.runner.loop());
  CHECK(x.events.contains(R"("event":"claim_failed")"));
  CHECK(x.events.contains("registration_rejected: AccessDenied"));
  CHECK(x.runner.attempts() == 1);
  x.clock.advance(999);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.runner.attempts() == 1);
  CHECK(x.mqtt.connectCalls == 1);
  x.clock.advance(1);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.runner.attempts() == 2);
  CHECK(x.mqtt.connectCalls == 2);
  // The second attempt succeeds: the device's own credential is kept and the runner is done.
  CHECK_FALSE(x.runner.loop());
  x.mqtt.listener->onMessage("$aws/certificates/create/json/accepted", kCertificateAnswer);
  x.mqtt.listener->onMessage(std::string(kRegister) + "/accepted", R"({"thingName":"PUMP_0001"})");
  CHECK(x.runner.loop());
  CHECK(es::ClaimProvisioner::hasOwnCertificate(x.store));
}

TEST_CASE("claim runner: a step with no answer is given up and the exchange starts again") {
  Runner x;
  CHECK_FALSE(x.runner.loop());
  CHECK_FALSE(x.runner.loop());
  REQUIRE(x.mqtt.published.size() == 1);
  x.clock.advance(es::ClaimRunner::kStepTimeoutMs - 1);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.mqtt.isConnected);
  x.clock.advance(1);
  CHECK_FALSE(x.runner.loop());
  CHECK_FALSE(x.mqtt.isConnected);
  CHECK(x.events.contains("step_timed_out"));
  x.clock.advance(1000);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.mqtt.connectCalls == 2);
  CHECK_FALSE(x.runner.loop());
  // The new attempt asks for a new certificate from the start.
  CHECK(x.mqtt.published.size() == 2);
  CHECK(x.mqtt.published[1].topic == "$aws/certificates/create/json");
}

TEST_CASE("claim runner: a broker that refuses the connection is retried with a growing delay") {
  Runner x;
  x.mqtt.refuse = true;
  CHECK_FALSE(x.runner.loop());
  CHECK(x.events.contains("connect_failed: connection_refused"));
  x.clock.advance(1000);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.mqtt.connectCalls == 2);
  // The bound doubled: 1 s later is too early now.
  x.clock.advance(1000);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.mqtt.connectCalls == 2);
  x.clock.advance(1000);
  CHECK_FALSE(x.runner.loop());
  CHECK(x.mqtt.connectCalls == 3);
  CHECK(x.store.data.empty());
}
