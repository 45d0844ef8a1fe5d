-- Up Migration

-- Edge deployment (Industrial plan): each edge model sent to a device, newest last. The
-- device confirms a model by its version and checksum on devices/<id>/model/state, or
-- refuses it with a reason; a model never confirmed within the command timeout reads as
-- failed ('no_confirmation'), as commands time out.
CREATE TABLE edge_deployments (
  id               serial PRIMARY KEY,
  tenant_id        integer NOT NULL,
  device_id        integer NOT NULL,
  entity_id        varchar(100) NOT NULL,
  version          varchar(100) NOT NULL,
  checksum         char(8) NOT NULL,
  size_bytes       integer NOT NULL,
  weight_encoding  varchar(8) NOT NULL,
  status           varchar(20) NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'confirmed', 'failed')),
  status_reason    text,
  requested_by     text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX edge_deployments_device ON edge_deployments (device_id, id DESC);

-- What each device last said it runs (it says so on every connect, and after a reboot).
CREATE TABLE edge_device_models (
  device_id    integer PRIMARY KEY,
  tenant_id    integer NOT NULL,
  version      varchar(100) NOT NULL,
  checksum     char(8) NOT NULL,
  reported_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

-- Anomalies a device found itself (also while it could not reach the broker). A report
-- redelivered by QoS 1 lands on the same key and changes nothing.
CREATE TABLE edge_anomalies (
  device_id      integer NOT NULL,
  tenant_id      integer NOT NULL,
  entity_id      varchar(100) NOT NULL,
  time           timestamptz NOT NULL,
  value          double precision NOT NULL,
  score          double precision NOT NULL,
  reason         varchar(32),
  model_version  varchar(100) NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, entity_id, time),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

SELECT enable_tenant_isolation('edge_deployments');
SELECT enable_tenant_isolation('edge_device_models');
SELECT enable_tenant_isolation('edge_anomalies');
GRANT SELECT, INSERT, UPDATE, DELETE ON edge_deployments, edge_device_models, edge_anomalies TO easysmart_app;
GRANT USAGE ON SEQUENCE edge_deployments_id_seq TO easysmart_app;
