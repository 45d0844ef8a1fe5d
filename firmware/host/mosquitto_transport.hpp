// MqttTransport over libmosquitto for the virtual device. Runs single-threaded: the
// network is only serviced from poll(), so every listener callback happens on the main
// loop's thread and the core needs no locks.
#pragma once

#include <string>

#include "interfaces.hpp"

struct mosquitto;
struct mosquitto_message;

namespace es_host {

struct TlsFiles {
  std::string caFile;
  std::string certFile;
  std::string keyFile;
};

class MosquittoTransport : public es::MqttTransport {
 public:
  MosquittoTransport(std::string host, int port, bool tls, TlsFiles files);
  ~MosquittoTransport() override;
  MosquittoTransport(const MosquittoTransport&) = delete;
  MosquittoTransport& operator=(const MosquittoTransport&) = delete;

  void setListener(es::MqttListener* listener) override { listener_ = listener; }
  bool connect(const es::ConnectOptions& options, std::string& error) override;
  void disconnect() override;
  es::PublishResult publish(const std::string& topic, const std::string& payload, int qos,
                            bool retain) override;
  bool subscribe(const std::string& filter, int qos) override;
  void poll() override;

 private:
  static void onConnect(mosquitto*, void* self, int rc);
  static void onDisconnect(mosquitto*, void* self, int rc);
  static void onPublish(mosquitto*, void* self, int mid);
  static void onMessage(mosquitto*, void* self, const ::mosquitto_message* msg);
  void lost(const std::string& reason);
  void destroy();

  std::string host_;
  int port_;
  bool tls_;
  TlsFiles files_;
  es::MqttListener* listener_ = nullptr;
  mosquitto* mosq_ = nullptr;
  bool socketOpen_ = false;  // TCP session exists (CONNACK may still be pending)
  bool connected_ = false;   // CONNACK accepted
};

}  // namespace es_host
