#include "mosquitto_transport.hpp"

#include <mosquitto.h>

#include <chrono>
#include <thread>

namespace es_host {

MosquittoTransport::MosquittoTransport(std::string host, int port, bool tls, TlsFiles files)
    : host_(std::move(host)), port_(port), tls_(tls), files_(std::move(files)) {}

bool MosquittoTransport::connect(const es::ConnectOptions& o, std::string& error) {
  destroyClient();
  if (!newClient(o, error)) return false;
  if (tls_) {
    const char* cert = files_.certFile.empty() ? nullptr : files_.certFile.c_str();
    const char* key = files_.keyFile.empty() ? nullptr : files_.keyFile.c_str();
    const int rc = mosquitto_tls_set(mosq_, files_.caFile.empty() ? nullptr : files_.caFile.c_str(),
                                     files_.caFile.empty() ? "/etc/ssl/certs" : nullptr, cert, key,
                                     nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      error = std::string("tls_setup_failed: ") + mosquitto_strerror(rc);
      destroyClient();
      return false;
    }
  }
  const int rc = mosquitto_connect(mosq_, host_.c_str(), port_, o.keepAliveSeconds);
  if (rc != MOSQ_ERR_SUCCESS) {
    error = rc == MOSQ_ERR_ERRNO ? "connection_refused" : mosquitto_strerror(rc);
    destroyClient();
    return false;
  }
  socketOpen_ = true;
  return true;
}

void MosquittoTransport::disconnect() {
  if (mosq_ && socketOpen_) {
    // A disconnect we asked for is not a connection loss to report to the core.
    socketOpen_ = false;
    connected_ = false;
    mosquitto_disconnect(mosq_);
    // Give the DISCONNECT packet a chance to leave before the socket is closed.
    mosquitto_loop(mosq_, 20, 1);
  }
  destroyClient();
}

void MosquittoTransport::poll() {
  if (!mosq_ || !socketOpen_) {
    // Nothing to service; yield instead of spinning the core's loop at 100% CPU.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return;
  }
  const int rc = mosquitto_loop(mosq_, 10, 1);
  if (rc != MOSQ_ERR_SUCCESS && socketOpen_) {
    lost(rc == MOSQ_ERR_CONN_LOST ? "connection_lost" : mosquitto_strerror(rc));
  }
}

}  // namespace es_host
