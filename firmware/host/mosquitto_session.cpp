#include "mosquitto_session.hpp"

#include <mosquitto.h>

namespace es_host {

MosquittoSession::MosquittoSession() { mosquitto_lib_init(); }

MosquittoSession::~MosquittoSession() {
  destroyClient();
  mosquitto_lib_cleanup();
}

void MosquittoSession::destroyClient() {
  if (mosq_) {
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }
  socketOpen_ = false;
  connected_ = false;
}

bool MosquittoSession::newClient(const es::ConnectOptions& o, std::string& error) {
  mosq_ = mosquitto_new(o.clientId.c_str(), true, this);
  if (!mosq_) {
    error = "mosquitto_new_failed";
    return false;
  }
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(mosq_, &MosquittoSession::onConnect);
  mosquitto_disconnect_callback_set(mosq_, &MosquittoSession::onDisconnect);
  mosquitto_publish_callback_set(mosq_, &MosquittoSession::onPublish);
  mosquitto_message_callback_set(mosq_, &MosquittoSession::onMessage);
  if (!o.username.empty()) {
    mosquitto_username_pw_set(mosq_, o.username.c_str(),
                              o.password.empty() ? nullptr : o.password.c_str());
  }
  if (!o.willTopic.empty()) {
    mosquitto_will_set(mosq_, o.willTopic.c_str(), static_cast<int>(o.willPayload.size()),
                       o.willPayload.data(), o.willQos, o.willRetain);
  }
  return true;
}

es::PublishResult MosquittoSession::publish(const std::string& topic, const std::string& payload,
                                            int qos, bool retain) {
  es::PublishResult r;
  if (!mosq_ || !connected_) return r;
  int mid = 0;
  const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), qos, retain);
  if (rc != MOSQ_ERR_SUCCESS) return r;
  queuedOutput();
  r.accepted = true;
  // QoS 0 completes on hand-over; QoS 1 when the PUBACK for mid arrives.
  r.ackId = qos > 0 ? mid : 0;
  return r;
}

bool MosquittoSession::subscribe(const std::string& filter, int qos) {
  if (!mosq_ || !connected_) return false;
  const bool ok = mosquitto_subscribe(mosq_, nullptr, filter.c_str(), qos) == MOSQ_ERR_SUCCESS;
  queuedOutput();
  return ok;
}

void MosquittoSession::lost(const std::string& reason) {
  if (!socketOpen_) return;
  socketOpen_ = false;
  connected_ = false;
  losing();
  if (listener_) listener_->onDisconnected(reason);
}

void MosquittoSession::onConnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<MosquittoSession*>(self);
  if (rc == 0) {
    t->connected_ = true;
    if (t->listener_) t->listener_->onConnected();
  } else {
    t->lost(std::string("connack_refused: ") + mosquitto_connack_string(rc));
  }
}

void MosquittoSession::onDisconnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<MosquittoSession*>(self);
  t->lost(rc == 0 ? "disconnected" : "connection_lost");
}

void MosquittoSession::onPublish(mosquitto*, void* self, int mid) {
  auto* t = static_cast<MosquittoSession*>(self);
  if (t->listener_) t->listener_->onPublishAcked(mid);
}

void MosquittoSession::onMessage(mosquitto*, void* self, const ::mosquitto_message* msg) {
  auto* t = static_cast<MosquittoSession*>(self);
  if (!t->listener_ || !msg || !msg->topic) return;
  const std::string payload(static_cast<const char*>(msg->payload),
                            msg->payload ? static_cast<size_t>(msg->payloadlen) : 0);
  t->listener_->onMessage(msg->topic, payload);
}

}  // namespace es_host
