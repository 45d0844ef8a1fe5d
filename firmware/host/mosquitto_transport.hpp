// MqttTransport over libmosquitto for the virtual device. Runs single-threaded: the
// network is only serviced from poll(), so every listener callback happens on the main
// loop's thread and the core needs no locks.
#pragma once

#include <string>

#include "mosquitto_session.hpp"

namespace es_host {

struct TlsFiles {
  std::string caFile;
  std::string certFile;
  std::string keyFile;
};

class MosquittoTransport : public MosquittoSession {
 public:
  MosquittoTransport(std::string host, int port, bool tls, TlsFiles files);

  bool connect(const es::ConnectOptions& options, std::string& error) override;
  void disconnect() override;
  void poll() override;

 private:
  std::string host_;
  int port_;
  bool tls_;
  TlsFiles files_;
};

}  // namespace es_host
