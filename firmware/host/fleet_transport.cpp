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
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    std::perror("epoll_create1");
    std::exit(1);
  }
}

Reactor::~Reactor() {
  if (epfd_ >= 0) close(epfd_);
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
  destroyClient();
}

void FleetTransport::queuedOutput() { reactor_.markDirty(this); }

void FleetTransport::losing() { reactor_.unwatch(this); }

bool FleetTransport::connect(const es::ConnectOptions& o, std::string& error) {
  destroy();
  if (!newClient(o, error)) return false;
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

}  // namespace es_host
