// MQTT for many devices in one process: each device keeps its own libmosquitto client (its
// own connection, credentials and Last Will), but none of them blocks or selects on its
// socket. One epoll set (Reactor) waits on every connection at once and hands each ready
// socket to its client through libmosquitto's non-threaded calls (mosquitto_loop_read,
// _write, _misc). mosquitto_loop() itself cannot be used: it select()s one client at a
// time, and select() cannot watch descriptors above 1023.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mosquitto_session.hpp"

namespace es_host {

class FleetTransport;

class Reactor {
 public:
  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Waits up to timeoutMs for socket activity, services what is ready, then writes what
  // the devices queued meanwhile.
  void run(int timeoutMs);
  // Keepalive pings and dead-peer detection for every open connection (libmosquitto's
  // loop_misc); cheap, meant to be called a few times a second.
  void housekeeping();
  // Writes what devices queued since the last run (publishes from their loop()).
  void flushWrites();

 private:
  friend class FleetTransport;
  int add(FleetTransport* t);
  void watch(FleetTransport* t, int fd);
  void unwatch(FleetTransport* t);
  void markDirty(FleetTransport* t);

  int epfd_ = -1;
  std::vector<FleetTransport*> transports_;
  std::vector<FleetTransport*> dirty_;
};

class FleetTransport : public MosquittoSession {
 public:
  FleetTransport(Reactor& reactor, std::string host, int port);
  ~FleetTransport() override;

  bool connect(const es::ConnectOptions& options, std::string& error) override;
  void disconnect() override;
  // Normally a no-op: the reactor services the socket. While the device shuts down (and
  // waits for its "offline" to be acknowledged outside the reactor's loop), it services its
  // own socket without blocking.
  void poll() override;
  void setSelfServicing(bool on) { selfServicing_ = on; }

 protected:
  void queuedOutput() override;
  void losing() override;

 private:
  friend class Reactor;
  void readable();
  void writable();
  void misc();
  // After a client call: keep the reactor watching for writability while output is queued.
  void syncInterest();
  void destroy();

  Reactor& reactor_;
  int index_;
  std::string host_;
  int port_;
  int fd_ = -1;
  bool watchingWrite_ = false;
  bool dirty_ = false;
  bool selfServicing_ = false;
};

}  // namespace es_host
