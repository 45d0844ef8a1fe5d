#include "mosquitto_transport.hpp"

#include <mosquitto.h>

#include <chrono>
#include <thread>

namespace es_host {

MosquittoTransport::MosquittoTransport(std::string host, int port, bool tls, TlsFiles files)
    : host_(std::move(host)), port_(port), tls_(tls), files_(std::move(files)) {
  mosquitto_lib_init();
}

MosquittoTransport::~MosquittoTransport() {
  destroy();
  mosquitto_lib_cleanup();
}

void MosquittoTransport::destroy() {
  if (mosq_) {
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }
  socketOpen_ = false;
  connected_ = false;
}

bool MosquittoTransport::connect(const es::ConnectOptions& o, std::string& error) {
  // A brand-new client object per session: libmosquitto would otherwise replay its own
  // unacknowledged messages after reconnecting, on top of the core re-sending them from
  // its buffer, and the platform would see duplicates.
  destroy();
  mosq_ = mosquitto_new(o.clientId.c_str(), true, this);
  if (!mosq_) {
    error = "mosquitto_new_failed";
    return false;
  }
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(mosq_, &MosquittoTransport::onConnect);
  mosquitto_disconnect_callback_set(mosq_, &MosquittoTransport::onDisconnect);
  mosquitto_publish_callback_set(mosq_, &MosquittoTransport::onPublish);
  mosquitto_message_callback_set(mosq_, &MosquittoTransport::onMessage);
  if (!o.username.empty()) {
    mosquitto_username_pw_set(mosq_, o.username.c_str(),
                              o.password.empty() ? nullptr : o.password.c_str());
  }
  if (!o.willTopic.empty()) {
    mosquitto_will_set(mosq_, o.willTopic.c_str(), static_cast<int>(o.willPayload.size()),
                       o.willPayload.data(), o.willQos, o.willRetain);
  }
  if (tls_) {
    const char* cert = files_.certFile.empty() ? nullptr : files_.certFile.c_str();
    const char* key = files_.keyFile.empty() ? nullptr : files_.keyFile.c_str();
    const int rc = mosquitto_tls_set(mosq_, files_.caFile.empty() ? nullptr : files_.caFile.c_str(),
                                     files_.caFile.empty() ? "/etc/ssl/certs" : nullptr, cert, key,
                                     nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      error = std::string("tls_setup_failed: ") + mosquitto_strerror(rc);
      destroy();
      return false;
    }
  }
  const int rc = mosquitto_connect(mosq_, host_.c_str(), port_, o.keepAliveSeconds);
  if (rc != MOSQ_ERR_SUCCESS) {
    error = rc == MOSQ_ERR_ERRNO ? "connection_refused" : mosquitto_strerror(rc);
    destroy();
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
  destroy();
}

es::PublishResult MosquittoTransport::publish(const std::string& topic, const std::string& payload,
                                              int qos, bool retain) {
  es::PublishResult r;
  if (!mosq_ || !connected_) return r;
  int mid = 0;
  const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), qos, retain);
  if (rc != MOSQ_ERR_SUCCESS) return r;
  r.accepted = true;
  // QoS 0 completes on hand-over; QoS 1 when the PUBACK for mid arrives.
  r.ackId = qos > 0 ? mid : 0;
  return r;
}

bool MosquittoTransport::subscribe(const std::string& filter, int qos) {
  if (!mosq_ || !connected_) return false;
  return mosquitto_subscribe(mosq_, nullptr, filter.c_str(), qos) == MOSQ_ERR_SUCCESS;
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

void MosquittoTransport::lost(const std::string& reason) {
  if (!socketOpen_) return;
  socketOpen_ = false;
  connected_ = false;
  if (listener_) listener_->onDisconnected(reason);
}

void MosquittoTransport::onConnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<MosquittoTransport*>(self);
  if (rc == 0) {
    t->connected_ = true;
    if (t->listener_) t->listener_->onConnected();
  } else {
    t->lost(std::string("connack_refused: ") + mosquitto_connack_string(rc));
  }
}

void MosquittoTransport::onDisconnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<MosquittoTransport*>(self);
  t->lost(rc == 0 ? "disconnected" : "connection_lost");
}

void MosquittoTransport::onPublish(mosquitto*, void* self, int mid) {
  auto* t = static_cast<MosquittoTransport*>(self);
  if (t->listener_) t->listener_->onPublishAcked(mid);
}

void MosquittoTransport::onMessage(mosquitto*, void* self, const ::mosquitto_message* msg) {
  auto* t = static_cast<MosquittoTransport*>(self);
  if (!t->listener_ || !msg || !msg->topic) return;
  const std::string payload(static_cast<const char*>(msg->payload),
                            msg->payload ? static_cast<size_t>(msg->payloadlen) : 0);
  t->listener_->onMessage(msg->topic, payload);
}

}  // namespace es_host
