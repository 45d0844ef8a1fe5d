#include "fleet_transport.hpp"

#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace es_host {

namespace {

// An epoll event names its transport by index and the descriptor it was registered with,
// so an event for a connection that was closed (and its number reused) meanwhile is skipped.
uint64_t eventKey(int index, int fd) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(index)) << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

Reactor::Reactor() {
  mosquitto_lib_init();
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    std::perror("epoll_create1");
    std::exit(1);
  }
}

Reactor::~Reactor() {
  if (epfd_ >= 0) close(epfd_);
  mosquitto_lib_cleanup();
}

int Reactor::add(FleetTransport* t) {
  transports_.push_back(t);
  return static_cast<int>(transports_.size() - 1);
}

void Reactor::watch(FleetTransport* t, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = eventKey(t->index_, fd);
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  t->watchingWrite_ = false;
}

void Reactor::unwatch(FleetTransport* t) {
  // The descriptor may already be closed by libmosquitto (then the kernel dropped it).
  if (t->fd_ >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, t->fd_, nullptr);
  t->fd_ = -1;
  t->watchingWrite_ = false;
}

void Reactor::markDirty(FleetTransport* t) {
  if (t->dirty_) return;
  t->dirty_ = true;
  dirty_.push_back(t);
}

void Reactor::run(int timeoutMs) {
  epoll_event events[512];
  const int n = epoll_wait(epfd_, events, 512, timeoutMs);
  for (int i = 0; i < n; ++i) {
    const uint64_t key = events[i].data.u64;
    const size_t index = static_cast<size_t>(key >> 32);
    const int fd = static_cast<int>(key & 0xffffffffu);
    if (index >= transports_.size()) continue;
    FleetTransport* t = transports_[index];
    if (t->fd_ != fd || !t->socketOpen_) continue;
    if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) t->readable();
    if (t->fd_ == fd && t->socketOpen_ && (events[i].events & EPOLLOUT)) t->writable();
  }
  flushWrites();
}

void Reactor::flushWrites() {
  // Swapped out first: servicing a transport can mark others (never itself again) dirty.
  std::vector<FleetTransport*> pending;
  pending.swap(dirty_);
  for (FleetTransport* t : pending) {
    t->dirty_ = false;
    t->syncInterest();
  }
}

void Reactor::housekeeping() {
  for (FleetTransport* t : transports_) {
    if (t->socketOpen_) t->misc();
  }
  flushWrites();
}

FleetTransport::FleetTransport(Reactor& reactor, std::string host, int port)
    : reactor_(reactor), index_(reactor.add(this)), host_(std::move(host)), port_(port) {}

FleetTransport::~FleetTransport() { destroy(); }

void FleetTransport::destroy() {
  reactor_.unwatch(this);
  if (mosq_) {
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }
  socketOpen_ = false;
  connected_ = false;
}

bool FleetTransport::connect(const es::ConnectOptions& o, std::string& error) {
  // A new client object per session, as in the virtual device: libmosquitto would otherwise
  // replay its own unacknowledged messages on top of the core re-sending its buffer.
  destroy();
  mosq_ = mosquitto_new(o.clientId.c_str(), true, this);
  if (!mosq_) {
    error = "mosquitto_new_failed";
    return false;
  }
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(mosq_, &FleetTransport::onConnect);
  mosquitto_disconnect_callback_set(mosq_, &FleetTransport::onDisconnect);
  mosquitto_publish_callback_set(mosq_, &FleetTransport::onPublish);
  mosquitto_message_callback_set(mosq_, &FleetTransport::onMessage);
  if (!o.username.empty()) {
    mosquitto_username_pw_set(mosq_, o.username.c_str(),
                              o.password.empty() ? nullptr : o.password.c_str());
  }
  if (!o.willTopic.empty()) {
    mosquitto_will_set(mosq_, o.willTopic.c_str(), static_cast<int>(o.willPayload.size()),
                       o.willPayload.data(), o.willQos, o.willRetain);
  }
  // The TCP connect blocks (instant on a local broker, refused at once while it is down);
  // the CONNECT packet and everything after it go through the reactor.
  const int rc = mosquitto_connect(mosq_, host_.c_str(), port_, o.keepAliveSeconds);
  if (rc != MOSQ_ERR_SUCCESS) {
    error = rc == MOSQ_ERR_ERRNO ? "connection_refused" : mosquitto_strerror(rc);
    destroy();
    return false;
  }
  socketOpen_ = true;
  fd_ = mosquitto_socket(mosq_);
  reactor_.watch(this, fd_);
  reactor_.markDirty(this);
  return true;
}

void FleetTransport::disconnect() {
  if (mosq_ && socketOpen_) {
    // A disconnect we asked for is not a connection loss to report to the core.
    socketOpen_ = false;
    connected_ = false;
    mosquitto_disconnect(mosq_);
    mosquitto_loop_write(mosq_, 1);
  }
  destroy();
}

es::PublishResult FleetTransport::publish(const std::string& topic, const std::string& payload,
                                          int qos, bool retain) {
  es::PublishResult r;
  if (!mosq_ || !connected_) return r;
  int mid = 0;
  const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), qos, retain);
  if (rc != MOSQ_ERR_SUCCESS) return r;
  reactor_.markDirty(this);
  r.accepted = true;
  r.ackId = qos > 0 ? mid : 0;
  return r;
}

bool FleetTransport::subscribe(const std::string& filter, int qos) {
  if (!mosq_ || !connected_) return false;
  const bool ok = mosquitto_subscribe(mosq_, nullptr, filter.c_str(), qos) == MOSQ_ERR_SUCCESS;
  reactor_.markDirty(this);
  return ok;
}

void FleetTransport::poll() {
  if (!selfServicing_ || !mosq_ || !socketOpen_) return;
  pollfd p{fd_, static_cast<short>(POLLIN | (mosquitto_want_write(mosq_) ? POLLOUT : 0)), 0};
  if (::poll(&p, 1, 1) <= 0) return;
  if (p.revents & (POLLIN | POLLERR | POLLHUP)) readable();
  if (socketOpen_ && (p.revents & POLLOUT)) writable();
}

void FleetTransport::readable() {
  const int rc = mosquitto_loop_read(mosq_, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    lost(rc == MOSQ_ERR_CONN_LOST ? "connection_lost" : mosquitto_strerror(rc));
    return;
  }
  reactor_.markDirty(this);
}

void FleetTransport::writable() {
  const int rc = mosquitto_loop_write(mosq_, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    lost(rc == MOSQ_ERR_CONN_LOST ? "connection_lost" : mosquitto_strerror(rc));
    return;
  }
  reactor_.markDirty(this);
}

void FleetTransport::misc() {
  const int rc = mosquitto_loop_misc(mosq_);
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
    lost(mosquitto_strerror(rc));
    return;
  }
  reactor_.markDirty(this);
}

void FleetTransport::syncInterest() {
  if (!mosq_ || !socketOpen_ || fd_ < 0) return;
  bool want = mosquitto_want_write(mosq_);
  if (want) {
    // Most output leaves at once; only what the socket would not take waits for EPOLLOUT.
    const int rc = mosquitto_loop_write(mosq_, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      lost(rc == MOSQ_ERR_CONN_LOST ? "connection_lost" : mosquitto_strerror(rc));
      return;
    }
    want = mosquitto_want_write(mosq_);
  }
  if (want == watchingWrite_) return;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = eventKey(index_, fd_);
  epoll_ctl(reactor_.epfd_, EPOLL_CTL_MOD, fd_, &ev);
  watchingWrite_ = want;
}

void FleetTransport::lost(const std::string& reason) {
  if (!socketOpen_) return;
  socketOpen_ = false;
  connected_ = false;
  reactor_.unwatch(this);
  if (listener_) listener_->onDisconnected(reason);
}

void FleetTransport::onConnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<FleetTransport*>(self);
  if (rc == 0) {
    t->connected_ = true;
    if (t->listener_) t->listener_->onConnected();
  } else {
    t->lost(std::string("connack_refused: ") + mosquitto_connack_string(rc));
  }
}

void FleetTransport::onDisconnect(mosquitto*, void* self, int rc) {
  auto* t = static_cast<FleetTransport*>(self);
  t->lost(rc == 0 ? "disconnected" : "connection_lost");
}

void FleetTransport::onPublish(mosquitto*, void* self, int mid) {
  auto* t = static_cast<FleetTransport*>(self);
  if (t->listener_) t->listener_->onPublishAcked(mid);
}

void FleetTransport::onMessage(mosquitto*, void* self, const ::mosquitto_message* msg) {
  auto* t = static_cast<FleetTransport*>(self);
  if (!t->listener_ || !msg || !msg->topic) return;
  const std::string payload(static_cast<const char*>(msg->payload),
                            msg->payload ? static_cast<size_t>(msg->payloadlen) : 0);
  t->listener_->onMessage(msg->topic, payload);
}

}  // namespace es_host
