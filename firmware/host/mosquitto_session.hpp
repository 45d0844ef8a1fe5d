// What every host transport does with one libmosquitto client: a fresh clean session per
// connect (identity, credentials, Last Will, callbacks), publishing and subscribing, and
// turning libmosquitto's callbacks into the core's listener calls. How the socket is
// serviced differs: MosquittoTransport loops on its one client, FleetTransport leaves it to
// a reactor shared by many.
#pragma once

#include <string>

#include "interfaces.hpp"

struct mosquitto;
struct mosquitto_message;

namespace es_host {

class MosquittoSession : public es::MqttTransport {
 public:
  MosquittoSession();
  ~MosquittoSession() override;
  MosquittoSession(const MosquittoSession&) = delete;
  MosquittoSession& operator=(const MosquittoSession&) = delete;

  void setListener(es::MqttListener* listener) override { listener_ = listener; }
  es::PublishResult publish(const std::string& topic, const std::string& payload, int qos,
                            bool retain) override;
  bool subscribe(const std::string& filter, int qos) override;

 protected:
  // A brand-new client object per session: libmosquitto would otherwise replay its own
  // unacknowledged messages after reconnecting, on top of the core re-sending them from its
  // buffer, and the platform would see duplicates.
  bool newClient(const es::ConnectOptions& options, std::string& error);
  void destroyClient();
  // The connection is gone (not by our disconnect): tells the core once.
  void lost(const std::string& reason);
  // Hooks for a transport that services the socket itself.
  virtual void queuedOutput() {}
  virtual void losing() {}

  es::MqttListener* listener_ = nullptr;
  mosquitto* mosq_ = nullptr;
  bool socketOpen_ = false;  // TCP session exists (CONNACK may still be pending)
  bool connected_ = false;   // CONNACK accepted

 private:
  static void onConnect(mosquitto*, void* self, int rc);
  static void onDisconnect(mosquitto*, void* self, int rc);
  static void onPublish(mosquitto*, void* self, int mid);
  static void onMessage(mosquitto*, void* self, const ::mosquitto_message* msg);
};

}  // namespace es_host
