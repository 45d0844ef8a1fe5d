/**
 * Generated from the HTTP API's OpenAPI document by `npm run api:types`: do not edit.
 * Change the route table (shared/http/route-table.ts) or the response schemas
 * (shared/http/responses.ts) and run it again.
 */

export interface paths {
    "/api/auth/register": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign up: creates the tenant (plan free) and its owner */
        post: operations["postAuthRegister"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign in with username or email */
        post: operations["postAuthLogin"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Change the caller's password; every other session of theirs ends */
        post: operations["postAuthPassword"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign out: every token of the caller stops working and their WebSockets close */
        post: operations["postAuthLogout"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller and their tenant */
        get: operations["getAuthMe"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/.well-known/jwks.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Public keys that verify access tokens */
        get: operations["getWellKnownJwksJson"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/tenant": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's plan, limits and usage */
        get: operations["getTenant"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's users */
        get: operations["getUsers"];
        put?: never;
        /**
         * Add a user to the tenant
         * @description Requires the owner or admin role.
         */
        post: operations["postUsers"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/users/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Remove a user (only an owner removes an owner); their sessions end
         * @description Requires the owner or admin role.
         */
        delete: operations["deleteUsersId"];
        options?: never;
        head?: never;
        /**
         * Change a user's role (only an owner changes an owner); the user's sessions end
         * @description Requires the owner or admin role.
         */
        patch: operations["patchUsersId"];
        trace?: never;
    };
    "/api/devices": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's devices */
        get: operations["getDevices"];
        put?: never;
        /**
         * Register a device; its broker credential is shown only in this answer
         * @description Requires the owner or admin role.
         */
        post: operations["postDevices"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/bulk": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Register up to 10,000 devices at once (JSON array or CSV with a header), all or none; their credentials are shown only in this answer
         * @description Rows are POST /api/devices bodies; a CSV needs the columns device_id, name and type and may have location (Content-Type: text/csv). Every row is checked before any device is created. If any row fails (invalid field, reserved or repeated device_id, a device_id already registered), nothing is created and the 422 error lists each failing row: {"error":{"code":"invalid_rows","message","rows":[{"row","device_id","code","message"}]}}. A batch that does not fit the plan's device limit is refused whole (403 plan_limit_reached). Ask for the answer as CSV (?format=csv or Accept: text/csv) to download the credentials as a file. On AWS IoT no certificate is made per device: the answer holds the batch's one claim credential (claim; in the CSV, the first line, without a device), with which each device obtains its own certificate once, at its first connection (fleet provisioning by claim), and each device's credentials name it (claim_certificate_id). Requires the owner or admin role.
         */
        post: operations["postDevicesBulk"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A device and each entity's latest value */
        get: operations["getDevicesId"];
        put?: never;
        post?: never;
        /**
         * Remove a device, its entities and its credential
         * @description Requires the owner or admin role.
         */
        delete: operations["deleteDevicesId"];
        options?: never;
        head?: never;
        /**
         * Update a device
         * @description Requires the owner or admin role.
         */
        patch: operations["patchDevicesId"];
        trace?: never;
    };
    "/api/devices/{id}/telemetry": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Raw or aggregated readings; old ranges are read from the rollups */
        get: operations["getDevicesIdTelemetry"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/entities/{entity_id}/commands": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Set an entity's value: published to the device's .../set topic
         * @description Requires the owner or admin role.
         */
        post: operations["postDevicesIdEntitiesEntityIdCommands"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/entities/{entity_id}/measuring-range": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /**
         * Set a numeric entity's measuring range: the span its sensor measures, which the advanced anomaly detection uses
         * @description Both `min` and `max` (min < max, in the entity's unit) set the range as the tenant's own, which wins over the one the device announces in its discovery (`measuring_range` in its entities). Neither clears the tenant's range: the device's announced one, if any, applies again. Only sensor and number entities have a range. With a range, the advanced detector also alarms at a level the entity has never shown on that span and damps its statistics at the levels the entity usually sits at; a changed range starts those levels afresh. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        put: operations["putDevicesIdEntitiesEntityIdMeasuringRange"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/commands": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A device's recent commands */
        get: operations["getDevicesIdCommands"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/commands/{command_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One command and its outcome */
        get: operations["getDevicesIdCommandsCommandId"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/anomalies": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Anomalies the plan's detector found in a time range
         * @description Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdAnomalies"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/predictions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every score the plan's detector gave in a time range
         * @description Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdPredictions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/ml/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's models, newest first: trained and uploaded, with status and metrics */
        get: operations["getMlModels"];
        put?: never;
        /**
         * Train an entity's model now with a chosen family and settings (plans with custom models), through the quality gate
         * @description Families: `dense` (a ReLU network; `size` small = one hidden layer of 8, medium = 16 and 8, large = 32 and 16) and `linear` (an autoregressive linear forecast, no hidden layer). `window_size`: the readings before the forecast one the model sees. `co_entities` (at most 4): other numeric entities of the same device the model also reads, each as its values aligned with the entity's last `co_window` readings (1-32, default 4; aligned as of each reading's time: the other entity's latest value at or before it), in training, in the quality gate and when the ingestion path scores; a reading is forecast only once every one of them has reported. Omitted settings are the platform's default model (dense, medium, 24 readings, no other entities). The model is trained on the entity's one-minute means of the last 30 days but the most recent tenth, which is held back to judge it. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        post: operations["postMlModels"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/ml/settings": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The model families and settings chosen per device type and entity */
        get: operations["getMlSettings"];
        /**
         * Choose the family and settings of an entity's model on every device of a type (plans with custom models)
         * @description The scheduled trainer (hourly) trains the entity of every device of the type with these settings, and again after each change; each model passes the quality gate before it becomes active. A training request without settings of its own uses them too. `co_entities` and `co_window` are as for `POST /api/ml/models`; a device of the type without one of those entities is not trained with them (the scheduled run skips it). Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        put: operations["putMlSettings"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/ml/models/upload": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Upload the tenant's own TensorFlow.js Layers model for an entity (plans with custom models), through the quality gate
         * @description `model_json` is the model.json that TensorFlow.js's `model.save()` or the Keras converter writes; `weights` is its weight files concatenated in manifest order, base64 (at most 512 KiB of float32 weights). Only Sequential models of InputLayer, Dense, Dropout (inert when scoring) and Activation layers (after a linear Dense) are accepted, with activations linear, relu, relu6, tanh, sigmoid, elu, selu, softplus or softsign; no code of the upload runs. `input` declares how the platform feeds the entity's readings: the last `window_size` readings, `relative` (each minus the latest, over normalisation.std; the output is the change from the latest, over std) or `standardised` (each minus normalisation.mean, over std; the output is the next reading standardised the same way), followed by the sine and cosine of the time of day when `time_of_day`. The model's input must have exactly that many features and one output. Nothing is stored unless every check passes; the model is then calibrated on the entity's history and becomes active only if it forecasts the held-back readings better than the naive forecasts. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        post: operations["postMlModelsUpload"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/ml/models/{id}/activate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Make an earlier model of its entity the active one again (a roll-back)
         * @description Any model that passed the quality gate may be activated again; its entity's active model becomes superseded, and scoring switches at the next reading. A rejected model answers 409. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        post: operations["postMlModelsIdActivate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/edge-model": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The edge model last sent to the device, its status, what the device runs and the anomalies it found
         * @description Requires the Industrial plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdEdgeModel"];
        put?: never;
        /**
         * Send an entity's anomaly model to the device, which then scores its own readings
         * @description Exports the entity's active model (or `version`, an earlier one: a roll-back) with the detector's current statistics into the edge model file and publishes it in chunks on devices/{device_id}/model/set. The device installs it only when complete and intact, keeps it across reboots, and confirms with the version and checksum on devices/{device_id}/model/state; GET shows the outcome. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        post: operations["postDevicesIdEdgeModel"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/alarm-rules": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's alarm rules */
        get: operations["getAlarmRules"];
        put?: never;
        /**
         * Create an alarm rule on a device or every device of a type
         * @description Conditions: threshold (>, <, outside, inside; held for_seconds; cleared past hysteresis), no_data (minutes), offline (minutes), anomaly (min_score; plans with anomaly detection), relay_uncommanded. Notifications: webhooks signed with the rule secret (X-EasySmart-Signature: t=<unix seconds>,v1=<HMAC-SHA256 hex of "<t>.<body>">) and e-mails, at most one per rule and device per quiet_minutes. Webhook secrets are write-only. Requires the owner or admin role.
         */
        post: operations["postAlarmRules"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/alarm-rules/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An alarm rule */
        get: operations["getAlarmRulesId"];
        put?: never;
        post?: never;
        /**
         * Delete an alarm rule; its open alarms clear, their history stays
         * @description Requires the owner or admin role.
         */
        delete: operations["deleteAlarmRulesId"];
        options?: never;
        head?: never;
        /**
         * Change an alarm rule; a changed rule judges afresh
         * @description Requires the owner or admin role.
         */
        patch: operations["patchAlarmRulesId"];
        trace?: never;
    };
    "/api/alarms": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Alarms: active first, then acknowledged, then cleared; the most severe first */
        get: operations["getAlarms"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/alarms/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An alarm with its history and its notification deliveries */
        get: operations["getAlarmsId"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/alarms/{id}/ack": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Acknowledge an active alarm (who and when are recorded)
         * @description Requires the owner or admin role.
         */
        post: operations["postAlarmsIdAck"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Export a device's readings (CSV or JSON lines; by default the last 24 hours) into a file behind an expiring link
         * @description The points are streamed into the file (constant memory for any range): a header row, then one row per point in time order with ISO 8601 times. source=5m or 1h exports the rollups (mean).
         */
        get: operations["getDevicesIdExport"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/exports": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Export the tenant's devices (or those listed) as a job; poll it for the link */
        post: operations["postExports"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/exports/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An export job; once done, its expiring link */
        get: operations["getExportsId"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The audit trail: who changed what, when and from where (owners and admins)
         * @description Requires the owner or admin role.
         */
        get: operations["getAudit"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/maintenance": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A device's maintenance events, newest first
         * @description Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdMaintenance"];
        put?: never;
        /**
         * Record a maintenance event: failure, repair, replacement or inspection
         * @description A failure ends a run-to-failure history that the fleet model learns from; a failure, repair or replacement starts the next life. The time defaults to now and may not be ahead of it. Requires the owner or admin role. Requires the Professional plan or higher (else 403 plan_required).
         */
        post: operations["postDevicesIdMaintenance"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/entities/{entity_id}/limit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /**
         * Set a numeric entity's limit; the device's health forecasts when its trend crosses it
         * @description Above, below or both (below < above); neither removes the limit. Only sensor and number entities take a limit. Requires the owner or admin role. Requires the Professional plan or higher (else 403 plan_required).
         */
        put: operations["putDevicesIdEntitiesEntityIdLimit"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A device's health: remaining useful life with its 10-90% interval, and when each limit is crossed
         * @description The RUL comes from the fleet model of the device's type (null while none is active), computed from its readings since its last failure, repair or replacement. Each limit's forecast is fitted to the entity's hourly means of the last 14 days. Status: service_soon when a limit is crossed or forecast within 7 days, or the RUL is within a fifth of the model's horizon; watch when a crossing's 10th percentile is within 30 days or the RUL's within half the horizon. Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/maintenance/devices": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every device's latest remaining useful life (to order the fleet by it)
         * @description Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getMaintenanceDevices"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/maintenance/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The tenant's fleet remaining-useful-life models, newest first
         * @description Requires the Professional plan or higher (else 403 plan_required).
         */
        get: operations["getMaintenanceModels"];
        put?: never;
        /**
         * Ask for a fleet's remaining-useful-life model to be trained (within 5 minutes)
         * @description The fleet is the tenant's devices of one type; its histories run from each device's start, failure, repair or replacement to its next failure. The new model becomes active only if it beats the fleet's mean life on histories held back from its training; otherwise it is listed as rejected with the reason and the previous model stays active. Requires the owner or admin role. Requires the Professional plan or higher (else 403 plan_required).
         */
        post: operations["postMaintenanceModels"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/patterns/discover": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Discover a device's recurring operating modes from its history (a job)
         * @description Cuts the history of the device's numeric entities into fixed windows (8 steps; the step follows the readings' density, at most 8,000 steps), describes each window by each entity's level, spread and change, and clusters them (k-means, k chosen by silhouette; one mode when no clustering separates well). The result replaces the device's patterns; labels of earlier patterns carry over to the new pattern that matches them. Poll the job with GET .../patterns/jobs/{job_id}. Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        post: operations["postDevicesIdPatternsDiscover"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/patterns/jobs/{job_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A discovery job: pending, running, done (with what it found) or failed (with why)
         * @description Requires the Industrial plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdPatternsJobsJobId"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/patterns": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A device's discovered patterns, and the one it is in now
         * @description `current_pattern` is the mode of the device's latest complete window: a pattern, or `novel: true` when the window is farther from every pattern than its novelty distance (a mode never seen in the history); null without patterns or readings in that window. Requires the Industrial plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdPatterns"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/devices/{id}/patterns/{pattern_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /**
         * Name a pattern ("start-up", "idle", "full load"), or remove its name
         * @description Requires the owner or admin role. Requires the Industrial plan or higher (else 403 plan_required).
         */
        patch: operations["patchDevicesIdPatternsPatternId"];
        trace?: never;
    };
    "/api/devices/{id}/patterns/timeline": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The device's mode over a range, stretch by stretch (bands on its charts)
         * @description Each window of the range is recognised as the pattern it lies deepest within (the smallest distance over that pattern's novelty distance), or as novel when that is above 1; back-to-back windows in the same mode form one segment. Windows without readings have no segment. The range may hold at most 5,000 windows. Requires the Industrial plan or higher (else 403 plan_required).
         */
        get: operations["getDevicesIdPatternsTimeline"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This document */
        get: operations["getOpenapiJson"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        AccessToken: {
            token: string;
            /** @constant */
            token_type: "Bearer";
            expires_in: number;
        } & {
            [key: string]: unknown;
        };
        Alarm: {
            id: number;
            rule_id: number | null;
            rule_name: string;
            device_id: number;
            entity_id: string | null;
            severity: components["schemas"]["AlarmSeverity"];
            status: components["schemas"]["AlarmStatus"];
            count: number;
            value: unknown;
            reason: string | null;
            /** @description ISO 8601 time, UTC */
            started_at: string;
            /** @description ISO 8601 time, UTC */
            last_at: string;
            acknowledged_by: number | null;
            acknowledged_at: string | null;
            cleared_at: string | null;
        } & {
            [key: string]: unknown;
        };
        AlarmDetail: {
            id: number;
            rule_id: number | null;
            rule_name: string;
            device_id: number;
            entity_id: string | null;
            severity: components["schemas"]["AlarmSeverity"];
            status: components["schemas"]["AlarmStatus"];
            count: number;
            value: unknown;
            reason: string | null;
            /** @description ISO 8601 time, UTC */
            started_at: string;
            /** @description ISO 8601 time, UTC */
            last_at: string;
            acknowledged_by: number | null;
            acknowledged_at: string | null;
            cleared_at: string | null;
            history: ({
                /** @enum {string} */
                type: "raised" | "repeated" | "acknowledged" | "cleared";
                /** @description ISO 8601 time, UTC */
                at: string;
                value: unknown;
                user_id: number | null;
                reason: string | null;
            } & {
                [key: string]: unknown;
            })[];
            deliveries: ({
                id: number;
                event: string;
                /** @enum {string} */
                channel: "webhook" | "email";
                target: string;
                /** @enum {string} */
                status: "pending" | "delivered" | "dead" | "suppressed";
                attempts: number;
                last_status: number | null;
                last_error: string | null;
                /** @description ISO 8601 time, UTC */
                created_at: string;
                delivered_at: string | null;
                next_attempt_at: string | null;
            } & {
                [key: string]: unknown;
            })[];
        } & {
            [key: string]: unknown;
        };
        AlarmRule: {
            id: number;
            name: string;
            device_id: number | null;
            device_type: string | null;
            entity_id: string | null;
            severity: components["schemas"]["AlarmSeverity"];
            condition: {
                /** @constant */
                type: "threshold";
                /** @enum {string} */
                op: ">" | "<" | "outside" | "inside";
                value?: number;
                low?: number;
                high?: number;
                /** @default 0 */
                for_seconds: number;
                /** @default 0 */
                hysteresis: number;
            } | {
                /** @constant */
                type: "no_data";
                minutes: number;
            } | {
                /** @constant */
                type: "offline";
                minutes: number;
            } | {
                /** @constant */
                type: "anomaly";
                min_score: number;
                /** @default 15 */
                clear_after_minutes: number;
            } | {
                /** @constant */
                type: "rul_below";
                value: number;
                /** @default 0 */
                hysteresis: number;
            } | {
                /** @constant */
                type: "relay_uncommanded";
                /** @default 15 */
                clear_after_minutes: number;
            };
            notify: {
                /** @description Secrets are write-only */
                webhooks: {
                    url: string;
                }[];
                emails: string[];
            };
            quiet_minutes: number;
            enabled: boolean;
            /** @description ISO 8601 time, UTC */
            created_at: string;
            /** @description ISO 8601 time, UTC */
            updated_at: string;
        } & {
            [key: string]: unknown;
        };
        /** @enum {string} */
        AlarmSeverity: "critical" | "major" | "minor" | "warning";
        /** @enum {string} */
        AlarmStatus: "active" | "acknowledged" | "cleared";
        Anomalies: {
            device_id: string;
            /**
             * @description The plan's detector
             * @enum {string}
             */
            detector: "basic" | "advanced";
            anomalies: components["schemas"]["Prediction"][];
        } & {
            [key: string]: unknown;
        };
        AuditEntry: {
            id: number;
            /** @description ISO 8601 time, UTC */
            at: string;
            user_id: number | null;
            username: string | null;
            action: string;
            target: string | null;
            /** @description The address the request came from */
            source: string | null;
            details: {
                [key: string]: unknown;
            } | null;
            /** @description Changed fields, before and after */
            changes: {
                [key: string]: {
                    before: unknown;
                    after: unknown;
                };
            } | null;
        } & {
            [key: string]: unknown;
        };
        BulkRegistration: {
            devices: ({
                row: number;
                device: components["schemas"]["Device"];
                credentials: components["schemas"]["Credentials"];
            } & {
                [key: string]: unknown;
            })[];
            /** @description On AWS IoT: the batch's one claim credential, which lets each of its devices obtain its own certificate once (docs/deploy.md, Fleet provisioning by claim) */
            claim?: components["schemas"]["ClaimCredential"];
        } & {
            [key: string]: unknown;
        };
        ClaimCredential: {
            certificate_id: string;
            certificate_pem: string;
            private_key: string;
            provisioning_template: string;
            client_id_prefix: string;
            broker_url?: string;
        } & {
            [key: string]: unknown;
        };
        Command: {
            /** Format: uuid */
            command_id: string;
            status: components["schemas"]["CommandStatus"];
        } & {
            [key: string]: unknown;
        };
        /** @enum {string} */
        CommandStatus: "sent" | "confirmed" | "timed_out" | "failed";
        Credentials: {
            client_id: string;
            username?: string;
            password?: string;
            certificate_pem?: string;
            private_key?: string;
            certificate_id?: string;
            broker_url?: string;
            /** @description AWS IoT fleet provisioning by claim: the claim certificate the device uses once, at its first connection, to obtain its own certificate */
            claim_certificate_id?: string;
        } & {
            [key: string]: unknown;
        };
        CurrentPattern: ({
            pattern_id: number | null;
            label: string | null;
            /** @description True when the latest window is like none of the patterns */
            novel: boolean;
            /** @description The smallest distance to a pattern over that pattern's novelty distance (above 1: novel) */
            distance_ratio: number;
            window: {
                /** @description ISO 8601 time, UTC */
                from: string;
                /** @description ISO 8601 time, UTC */
                to: string;
            } & {
                [key: string]: unknown;
            };
        } & {
            [key: string]: unknown;
        }) | null;
        Device: {
            id: number;
            tenant_id: number;
            device_id: string;
            name: string;
            type: string;
            location: string | null;
            /** @enum {string} */
            status: "online" | "offline";
            config: {
                [key: string]: unknown;
            } | null;
            last_seen: string | null;
            entity_count: number;
            /** @description ISO 8601 time, UTC */
            created_at: string;
            /** @description ISO 8601 time, UTC */
            updated_at: string;
        } & {
            [key: string]: unknown;
        };
        DeviceDetail: {
            device: components["schemas"]["Device"];
            entities: components["schemas"]["Entity"][];
            /** @description The device's operating mode over its latest complete window (pattern recognition, Industrial plan); null without the plan, patterns or recent readings */
            current_pattern: components["schemas"]["CurrentPattern"];
        } & {
            [key: string]: unknown;
        };
        DeviceExport: {
            /** @description Where the file is fetched; it expires */
            url: string;
            /** @description ISO 8601 time, UTC */
            expires_at: string;
            /** @enum {string} */
            format: "csv" | "jsonl";
            /** @enum {string} */
            source: "raw" | "5m" | "1h";
            rows: number;
            bytes: number;
        } & {
            [key: string]: unknown;
        };
        DeviceHealth: {
            device_id: string;
            rul: components["schemas"]["RemainingUsefulLife"] | null;
            thresholds: ({
                entity_id: string;
                limit: components["schemas"]["EntityLimit"];
                eta: {
                    /** @description ISO 8601 time, UTC */
                    time: string;
                    /** @description ISO 8601 time, UTC */
                    low: string;
                    /** @description ISO 8601 time, UTC */
                    high: string;
                } | null;
                /** @enum {string} */
                trend: "rising" | "falling" | "flat" | "insufficient-data";
                /** @description The trend level is past the limit now */
                crossed: boolean;
                /** @description The trend's slope per hour in the entity's unit (0 while the history is short) */
                slope_per_hour: number;
            } & {
                [key: string]: unknown;
            })[];
            /** @enum {string} */
            status: "ok" | "watch" | "service_soon";
        } & {
            [key: string]: unknown;
        };
        EdgeModel: {
            entity_id: string | null;
            version: string | null;
            checksum: string | null;
            /** @enum {string} */
            status: "none" | "sent" | "confirmed" | "failed";
            status_reason: string | null;
            size_bytes: number | null;
            weight_encoding: ("f32" | "i16" | "i8") | null;
            created_at: string | null;
            updated_at: string | null;
            running: {
                version: string;
                checksum: string;
                /** @description ISO 8601 time, UTC */
                reported_at: string;
            } | null;
            anomalies: {
                entity_id: string;
                /** @description ISO 8601 time, UTC */
                time: string;
                value: number;
                score: number;
                reason: string | null;
                model_version: string;
            }[];
        } & {
            [key: string]: unknown;
        };
        Entity: {
            entity_id: string;
            /** @enum {string} */
            entity_type: "switch" | "sensor" | "number" | "text";
            name: string;
            unit: string | null;
            icon: string | null;
            config: {
                [key: string]: unknown;
            } | null;
            /** @description The span the sensor measures; the advanced anomaly detection (Industrial plan) uses it */
            measuring_range: components["schemas"]["EntityMeasuringRange"] | null;
            latest: components["schemas"]["LatestReading"] | null;
        } & {
            [key: string]: unknown;
        };
        EntityLimit: {
            above: number | null;
            below: number | null;
        };
        EntityMeasuringRange: {
            min: number;
            max: number;
            /**
             * @description Announced in the device’s discovery, or set through the API (which wins)
             * @enum {string}
             */
            source: "device" | "user";
        };
        Error: {
            error: {
                code: string;
                message: string;
                rows?: {
                    row: number;
                    device_id?: string;
                    code: string;
                    message: string;
                }[];
            };
        };
        ExportJob: {
            id: number;
            /** @enum {string} */
            status: "pending" | "running" | "done" | "failed";
            request: {
                /** @description ISO 8601 time, UTC */
                from: string;
                /** @description ISO 8601 time, UTC */
                to: string;
                /** @enum {string} */
                format: "csv" | "jsonl";
                /** @enum {string} */
                source: "raw" | "5m" | "1h";
                device_ids: number[] | null;
            } & {
                [key: string]: unknown;
            };
            rows: number | null;
            bytes: number | null;
            error: string | null;
            /** @description ISO 8601 time, UTC */
            created_at: string;
            finished_at: string | null;
            url: string | null;
            expires_at: string | null;
        } & {
            [key: string]: unknown;
        };
        FleetModel: {
            id: number;
            device_type: string;
            version: string;
            /** @enum {string} */
            step_unit: "cycles" | "hours";
            histories: number;
            metrics: {
                [key: string]: unknown;
            };
            /** @enum {string} */
            status: "active" | "superseded" | "rejected";
            status_reason: string | null;
            /** @description ISO 8601 time, UTC */
            trained_at: string;
        } & {
            [key: string]: unknown;
        };
        LatestReading: {
            value: components["schemas"]["ReadingValue"];
            /** @description ISO 8601 time, UTC */
            time: string;
        };
        MaintenanceEvent: {
            id: number;
            device_id: number;
            /** @enum {string} */
            kind: "failure" | "repair" | "replacement" | "inspection";
            /** @description ISO 8601 time, UTC */
            time: string;
            note: string | null;
            recorded_by: number | null;
            /** @description ISO 8601 time, UTC */
            created_at: string;
        } & {
            [key: string]: unknown;
        };
        Model: {
            id: number;
            device_id: number;
            entity_id: string;
            kind: string;
            version: string;
            threshold: number;
            training_points: number;
            metrics: {
                [key: string]: unknown;
            };
            /** @enum {string} */
            status: "active" | "superseded" | "rejected";
            status_reason: string | null;
            /** @enum {string} */
            origin: "trained" | "uploaded";
            settings: {
                [key: string]: unknown;
            } | null;
            /** @description ISO 8601 time, UTC */
            trained_at: string;
        } & {
            [key: string]: unknown;
        };
        ModelTypeSettings: {
            device_type: string;
            entity_id: string;
            /** @enum {string} */
            family: "dense" | "linear";
            window_size: number;
            /** @enum {string} */
            size: "small" | "medium" | "large";
            co_entities: string[];
            co_window: number;
            /** @description ISO 8601 time, UTC */
            updated_at: string;
        };
        Pattern: {
            pattern_id: number;
            label: string | null;
            entity_ids: string[];
            /** @description Separate stretches of the history in this mode */
            occurrences: number;
            /** @description Its longest stretch */
            example: {
                /** @description ISO 8601 time, UTC */
                from: string;
                /** @description ISO 8601 time, UTC */
                to: string;
            } & {
                [key: string]: unknown;
            };
            total_seconds: number;
            /** @description Share of the history (with readings) in this mode, 0-1 */
            share: number;
            profile: ({
                entity_id: string;
                mean: number;
                std: number;
                min: number;
                max: number;
            } & {
                [key: string]: unknown;
            })[];
            /** @description ISO 8601 time, UTC */
            discovered_at: string;
        } & {
            [key: string]: unknown;
        };
        PatternJob: {
            job_id: number;
            device_id: number;
            /** @enum {string} */
            status: "pending" | "running" | "done" | "failed";
            request: {
                entity_ids: string[] | null;
                from: string | null;
                to: string | null;
            } & {
                [key: string]: unknown;
            };
            result: ({
                patterns: number;
                windows: number;
                silhouette: number | null;
                /** @description The entities the patterns were learnt from */
                entity_ids: string[];
                /** @description Sensors a discovery without `entity_ids` left out, with their readings in the range: fewer than 32, or than a quarter of the densest sensor's (the windows would follow their pace) */
                left_out: ({
                    entity_id: string;
                    readings: number;
                } & {
                    [key: string]: unknown;
                })[];
                step_seconds: number;
                window_seconds: number;
                /** @description ISO 8601 time, UTC */
                from: string;
                /** @description ISO 8601 time, UTC */
                to: string;
            } & {
                [key: string]: unknown;
            }) | null;
            /** @description Why it failed; `discovery_lost` when its worker stopped before finishing (out of time or memory) and no retry will come */
            error: ({
                code: string;
                message: string;
            } & {
                [key: string]: unknown;
            }) | null;
            /** @description Workers that have taken the job: a lost worker is retried, 3 attempts at most */
            attempts: number;
            /** @description ISO 8601 time, UTC */
            created_at: string;
            started_at: string | null;
            /** @description When the worker that has it is certainly ended; past it a running job was lost */
            deadline_at: string | null;
            finished_at: string | null;
        } & {
            [key: string]: unknown;
        };
        Plan: {
            name: components["schemas"]["PlanName"];
            display_name: string;
            max_devices: number | null;
            max_users: number | null;
            max_entities_per_device: number | null;
            max_series: number | null;
            retention_days: number | null;
            /** @enum {string} */
            anomaly_detection: "none" | "basic" | "advanced";
            predictive_maintenance: boolean;
            pattern_recognition: boolean;
            custom_models: boolean;
            edge_deployment: boolean;
        } & {
            [key: string]: unknown;
        };
        /** @enum {string} */
        PlanName: "free" | "starter" | "professional" | "industrial";
        Point: {
            /** @description ISO 8601 time, UTC */
            time: string;
            value: components["schemas"]["ReadingValue"] | null;
        };
        Prediction: {
            entity_id: string;
            /** @description ISO 8601 time, UTC */
            time: string;
            score: number;
            anomalous: boolean;
            value: number;
            reason: string | null;
            detector: string;
            model: string;
            model_version: string;
        } & {
            [key: string]: unknown;
        };
        Predictions: {
            device_id: string;
            /**
             * @description The plan's detector
             * @enum {string}
             */
            detector: "basic" | "advanced";
            predictions: components["schemas"]["Prediction"][];
        } & {
            [key: string]: unknown;
        };
        Profile: {
            user: components["schemas"]["User"];
            tenant: components["schemas"]["Tenant"];
        } & {
            [key: string]: unknown;
        };
        ReadingValue: number | boolean | string;
        RemainingUsefulLife: {
            value: number;
            low: number;
            high: number;
            /** @enum {string} */
            unit: "cycles" | "hours";
            model_version: string;
            /** @description ISO 8601 time, UTC */
            computed_at: string;
        } & {
            [key: string]: unknown;
        };
        /** @enum {string} */
        Role: "owner" | "admin" | "viewer";
        StoredCommand: {
            /** Format: uuid */
            command_id: string;
            status: components["schemas"]["CommandStatus"];
            device_id: number;
            entity_id: string;
            value: unknown;
            triggered_by: string;
            /** @description ISO 8601 time, UTC */
            created_at: string;
            /** @description ISO 8601 time, UTC */
            updated_at: string;
        } & {
            [key: string]: unknown;
        };
        Telemetry: {
            device_id: string;
            /** @enum {string} */
            source: "raw" | "5m" | "1h";
            series: {
                entity_id: string;
                points: components["schemas"]["Point"][];
            }[];
        } & {
            [key: string]: unknown;
        };
        Tenant: {
            id: number;
            name: string;
            plan: components["schemas"]["PlanName"];
            effective_plan: components["schemas"]["PlanName"];
            /** @enum {string} */
            status: "active" | "suspended";
            trial_ends_at: string | null;
            /** @description ISO 8601 time, UTC */
            created_at: string;
        } & {
            [key: string]: unknown;
        };
        TenantOverview: {
            tenant: components["schemas"]["Tenant"];
            plan: components["schemas"]["Plan"];
            usage: {
                devices: number;
                users: number;
                entities: number;
            };
        } & {
            [key: string]: unknown;
        };
        User: {
            id: number;
            tenant_id: number;
            username: string;
            email: string;
            role: components["schemas"]["Role"];
            last_login_at: string | null;
            /** @description ISO 8601 time, UTC */
            created_at: string;
        } & {
            [key: string]: unknown;
        };
    };
    responses: {
        /** @description The request is invalid (validation_failed, invalid_json, ...) */
        Error400: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No valid access token */
        Error401: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The caller's role or the tenant's plan does not allow it */
        Error403: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Not found in the caller’s tenant */
        Error404: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Conflicts with existing data */
        Error409: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The body is too large */
        Error413: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The body is not JSON */
        Error415: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Well formed but cannot be done as it stands (too little data, rows that fail) */
        Error422: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Too many attempts: try again after Retry-After seconds */
        Error429: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The MQTT broker or AWS IoT failed */
        Error502: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Busy: try again after Retry-After seconds */
        Error503: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description Internal error */
        Error500: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    postAuthRegister: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "tenant_name": "Acme Plant",
                 *       "username": "ana",
                 *       "email": "ana@example.com",
                 *       "password": "a long password"
                 *     }
                 */
                "application/json": {
                    tenant_name: string;
                    username: string;
                    /** Format: email */
                    email: string;
                    password: string;
                };
            };
        };
        responses: {
            /** @description The owner, the tenant and an access token */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        token: string;
                        /** @constant */
                        token_type: "Bearer";
                        expires_in: number;
                        user: components["schemas"]["User"];
                        tenant: components["schemas"]["Tenant"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            429: components["responses"]["Error429"];
            500: components["responses"]["Error500"];
            503: components["responses"]["Error503"];
        };
    };
    postAuthLogin: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "username": "ana",
                 *       "password": "a long password"
                 *     }
                 */
                "application/json": {
                    username: string;
                    password: string;
                };
            };
        };
        responses: {
            /** @description An access token */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AccessToken"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            429: components["responses"]["Error429"];
            500: components["responses"]["Error500"];
            503: components["responses"]["Error503"];
        };
    };
    postAuthPassword: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "current_password": "a long password",
                 *       "new_password": "an even longer password"
                 *     }
                 */
                "application/json": {
                    current_password: string;
                    new_password: string;
                };
            };
        };
        responses: {
            /** @description A fresh access token for this session */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AccessToken"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            429: components["responses"]["Error429"];
            500: components["responses"]["Error500"];
            503: components["responses"]["Error503"];
        };
    };
    postAuthLogout: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Signed out */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    getAuthMe: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The caller */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Profile"];
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    getWellKnownJwksJson: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A JSON Web Key Set */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        keys: ({
                            kty: string;
                            kid?: string;
                        } & {
                            [key: string]: unknown;
                        })[];
                    };
                };
            };
            500: components["responses"]["Error500"];
        };
    };
    getTenant: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Plan and usage */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TenantOverview"];
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    getUsers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Users */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        users: components["schemas"]["User"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    postUsers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "username": "bruno",
                 *       "email": "bruno@example.com",
                 *       "password": "another long password",
                 *       "role": "viewer"
                 *     }
                 */
                "application/json": {
                    username: string;
                    /** Format: email */
                    email: string;
                    password: string;
                    /** @enum {string} */
                    role: "owner" | "admin" | "viewer";
                };
            };
        };
        responses: {
            /** @description The new user */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        user: components["schemas"]["User"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
            503: components["responses"]["Error503"];
        };
    };
    deleteUsersId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            409: components["responses"]["Error409"];
            500: components["responses"]["Error500"];
        };
    };
    patchUsersId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "role": "viewer"
                 *     }
                 */
                "application/json": {
                    /** @enum {string} */
                    role: "owner" | "admin" | "viewer";
                };
            };
        };
        responses: {
            /** @description The user */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        user: components["schemas"]["User"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getDevices: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Devices */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        devices: components["schemas"]["Device"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    postDevices: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "device_id": "COMP_001",
                 *       "name": "Compressor 1",
                 *       "type": "compressor",
                 *       "location": "Hall B"
                 *     }
                 */
                "application/json": {
                    device_id: string;
                    name: string;
                    type: string;
                    location?: string | null;
                    config?: {
                        [key: string]: unknown;
                    } | null;
                };
            };
        };
        responses: {
            /** @description The device and its credential */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        device: components["schemas"]["Device"];
                        credentials: components["schemas"]["Credentials"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
            502: components["responses"]["Error502"];
        };
    };
    postDevicesBulk: {
        parameters: {
            query?: {
                format?: "json" | "csv";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example [
                 *       {
                 *         "device_id": "PUMP_0001",
                 *         "name": "Pump 1",
                 *         "type": "pump",
                 *         "location": "Line 1"
                 *       },
                 *       {
                 *         "device_id": "PUMP_0002",
                 *         "name": "Pump 2",
                 *         "type": "pump",
                 *         "location": "Line 1"
                 *       }
                 *     ]
                 */
                "application/json": unknown[];
                "text/csv": string;
            };
        };
        responses: {
            /** @description Each device, the row it came from and its credential, in row order */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BulkRegistration"];
                    "text/csv": string;
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            422: components["responses"]["Error422"];
            500: components["responses"]["Error500"];
            502: components["responses"]["Error502"];
        };
    };
    getDevicesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The device */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeviceDetail"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    deleteDevicesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    patchDevicesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "name": "Compressor 1 (rebuilt)",
                 *       "location": "Hall C"
                 *     }
                 */
                "application/json": {
                    name?: string;
                    type?: string;
                    location?: string | null;
                    config?: {
                        [key: string]: unknown;
                    } | null;
                };
            };
        };
        responses: {
            /** @description The device */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        device: components["schemas"]["Device"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdTelemetry: {
        parameters: {
            query?: {
                entity_id?: string;
                from?: string;
                to?: string;
                every?: string;
                fn?: "mean" | "min" | "max" | "count" | "last";
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Series per entity */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Telemetry"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    postDevicesIdEntitiesEntityIdCommands: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                entity_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "value": true
                 *     }
                 */
                "application/json": {
                    value: boolean | number | string;
                };
            };
        };
        responses: {
            /** @description The command, sent */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Command"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            409: components["responses"]["Error409"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
            502: components["responses"]["Error502"];
        };
    };
    putDevicesIdEntitiesEntityIdMeasuringRange: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                entity_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "min": -40,
                 *       "max": 125
                 *     }
                 */
                "application/json": {
                    /** @description Lowest value the sensor measures, in the entity’s unit */
                    min?: number;
                    /** @description Highest value the sensor measures, in the entity’s unit */
                    max?: number;
                };
            };
        };
        responses: {
            /** @description The range now in force */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        entity_id: string;
                        measuring_range: components["schemas"]["EntityMeasuringRange"] | null;
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdCommands: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Commands, newest first */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        commands: components["schemas"]["StoredCommand"][];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdCommandsCommandId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                command_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The command */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StoredCommand"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdAnomalies: {
        parameters: {
            query?: {
                entity_id?: string;
                from?: string;
                to?: string;
                every?: string;
                fn?: "mean" | "min" | "max" | "count" | "last";
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Anomalies */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Anomalies"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdPredictions: {
        parameters: {
            query?: {
                entity_id?: string;
                from?: string;
                to?: string;
                every?: string;
                fn?: "mean" | "min" | "max" | "count" | "last";
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Scores */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Predictions"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getMlModels: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Models */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        models: components["schemas"]["Model"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    postMlModels: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "device_id": 1,
                 *       "entity_id": "temperature",
                 *       "family": "dense",
                 *       "window_size": 24,
                 *       "size": "medium"
                 *     }
                 */
                "application/json": {
                    device_id: number;
                    entity_id: string;
                    /** @enum {string} */
                    family?: "dense" | "linear";
                    window_size?: number;
                    /** @enum {string} */
                    size?: "small" | "medium" | "large";
                    co_entities?: string[];
                    co_window?: number;
                };
            };
        };
        responses: {
            /** @description The new model: active, or rejected (with status_reason and the held-back metrics) when it does not forecast held-back readings better than repeating the last value or yesterday's value; a rejected model leaves the previous one active */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        model: components["schemas"]["Model"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            422: components["responses"]["Error422"];
            500: components["responses"]["Error500"];
        };
    };
    getMlSettings: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Settings */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        settings: components["schemas"]["ModelTypeSettings"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    putMlSettings: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "device_type": "pump",
                 *       "entity_id": "temperature",
                 *       "family": "dense",
                 *       "size": "large",
                 *       "window_size": 48,
                 *       "co_entities": [
                 *         "current"
                 *       ],
                 *       "co_window": 4
                 *     }
                 */
                "application/json": {
                    device_type: string;
                    entity_id: string;
                    /**
                     * @default dense
                     * @enum {string}
                     */
                    family?: "dense" | "linear";
                    /** @default 24 */
                    window_size?: number;
                    /**
                     * @default medium
                     * @enum {string}
                     */
                    size?: "small" | "medium" | "large";
                    /** @default [] */
                    co_entities?: string[];
                    /** @default 4 */
                    co_window?: number;
                };
            };
        };
        responses: {
            /** @description The stored choice */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        settings: components["schemas"]["ModelTypeSettings"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    postMlModelsUpload: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "device_id": 1,
                 *       "entity_id": "temperature",
                 *       "model_json": {
                 *         "format": "layers-model",
                 *         "modelTopology": {
                 *           "class_name": "Sequential",
                 *           "config": {
                 *             "name": "forecaster",
                 *             "layers": [
                 *               {
                 *                 "class_name": "Dense",
                 *                 "config": {
                 *                   "name": "out",
                 *                   "units": 1,
                 *                   "activation": "linear",
                 *                   "batch_input_shape": [
                 *                     null,
                 *                     25
                 *                   ]
                 *                 }
                 *               }
                 *             ]
                 *           }
                 *         },
                 *         "weightsManifest": [
                 *           {
                 *             "paths": [
                 *               "forecaster.weights.bin"
                 *             ],
                 *             "weights": [
                 *               {
                 *                 "name": "out/kernel",
                 *                 "shape": [
                 *                   25,
                 *                   1
                 *                 ],
                 *                 "dtype": "float32"
                 *               },
                 *               {
                 *                 "name": "out/bias",
                 *                 "shape": [
                 *                   1
                 *                 ],
                 *                 "dtype": "float32"
                 *               }
                 *             ]
                 *           }
                 *         ]
                 *       },
                 *       "weights": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                 *       "input": {
                 *         "window_size": 24,
                 *         "encoding": "relative",
                 *         "time_of_day": true,
                 *         "normalisation": {
                 *           "mean": 20,
                 *           "std": 2
                 *         }
                 *       }
                 *     }
                 */
                "application/json": {
                    device_id: number;
                    entity_id: string;
                    model_json: {
                        [key: string]: unknown;
                    };
                    weights: string;
                    input: {
                        window_size: number;
                        /** @enum {string} */
                        encoding: "relative" | "standardised";
                        time_of_day: boolean;
                        normalisation: {
                            mean: number;
                            std: number;
                        };
                    };
                };
            };
        };
        responses: {
            /** @description The uploaded model: active, or rejected by the quality gate (with status_reason and the held-back metrics); a rejected model leaves the previous one active */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        model: components["schemas"]["Model"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            422: components["responses"]["Error422"];
            500: components["responses"]["Error500"];
        };
    };
    postMlModelsIdActivate: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The model, now active */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        model: components["schemas"]["Model"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            409: components["responses"]["Error409"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdEdgeModel: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The edge model (status `none` when nothing was ever sent) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EdgeModel"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    postDevicesIdEdgeModel: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "entity_id": "temperature"
                 *     }
                 */
                "application/json": {
                    entity_id: string;
                    version?: string;
                };
            };
        };
        responses: {
            /** @description Sent; not yet confirmed */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EdgeModel"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            422: components["responses"]["Error422"];
            500: components["responses"]["Error500"];
            502: components["responses"]["Error502"];
        };
    };
    getAlarmRules: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Rules */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rules: components["schemas"]["AlarmRule"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    postAlarmRules: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "name": "Oil too hot",
                 *       "device_id": 1,
                 *       "entity_id": "temperature",
                 *       "severity": "critical",
                 *       "condition": {
                 *         "type": "threshold",
                 *         "op": ">",
                 *         "value": 80,
                 *         "for_seconds": 30,
                 *         "hysteresis": 5
                 *       },
                 *       "notify": {
                 *         "webhooks": [
                 *           {
                 *             "url": "https://hooks.example.com/alarms",
                 *             "secret": "a-secret-of-16-chars+"
                 *           }
                 *         ],
                 *         "emails": [
                 *           "shift@example.com"
                 *         ]
                 *       }
                 *     }
                 */
                "application/json": {
                    name: string;
                    device_id?: number;
                    device_type?: string;
                    entity_id?: string;
                    /** @enum {string} */
                    severity: "critical" | "major" | "minor" | "warning";
                    condition: {
                        /** @constant */
                        type: "threshold";
                        /** @enum {string} */
                        op: ">" | "<" | "outside" | "inside";
                        value?: number;
                        low?: number;
                        high?: number;
                        /** @default 0 */
                        for_seconds?: number;
                        /** @default 0 */
                        hysteresis?: number;
                    } | {
                        /** @constant */
                        type: "no_data";
                        minutes: number;
                    } | {
                        /** @constant */
                        type: "offline";
                        minutes: number;
                    } | {
                        /** @constant */
                        type: "anomaly";
                        min_score: number;
                        /** @default 15 */
                        clear_after_minutes?: number;
                    } | {
                        /** @constant */
                        type: "rul_below";
                        value: number;
                        /** @default 0 */
                        hysteresis?: number;
                    } | {
                        /** @constant */
                        type: "relay_uncommanded";
                        /** @default 15 */
                        clear_after_minutes?: number;
                    };
                    notify?: {
                        /** @default [] */
                        webhooks?: {
                            /** Format: uri */
                            url: string;
                            secret: string;
                        }[];
                        /** @default [] */
                        emails?: string[];
                    };
                    quiet_minutes?: number;
                    enabled?: boolean;
                };
            };
        };
        responses: {
            /** @description The rule */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rule: components["schemas"]["AlarmRule"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getAlarmRulesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The rule */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rule: components["schemas"]["AlarmRule"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    deleteAlarmRulesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    patchAlarmRulesId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "severity": "major",
                 *       "quiet_minutes": 30
                 *     }
                 */
                "application/json": {
                    name?: string;
                    device_id?: number;
                    device_type?: string;
                    entity_id?: string;
                    /** @enum {string} */
                    severity?: "critical" | "major" | "minor" | "warning";
                    condition?: {
                        /** @constant */
                        type: "threshold";
                        /** @enum {string} */
                        op: ">" | "<" | "outside" | "inside";
                        value?: number;
                        low?: number;
                        high?: number;
                        /** @default 0 */
                        for_seconds?: number;
                        /** @default 0 */
                        hysteresis?: number;
                    } | {
                        /** @constant */
                        type: "no_data";
                        minutes: number;
                    } | {
                        /** @constant */
                        type: "offline";
                        minutes: number;
                    } | {
                        /** @constant */
                        type: "anomaly";
                        min_score: number;
                        /** @default 15 */
                        clear_after_minutes?: number;
                    } | {
                        /** @constant */
                        type: "rul_below";
                        value: number;
                        /** @default 0 */
                        hysteresis?: number;
                    } | {
                        /** @constant */
                        type: "relay_uncommanded";
                        /** @default 15 */
                        clear_after_minutes?: number;
                    };
                    notify?: {
                        /** @default [] */
                        webhooks?: {
                            /** Format: uri */
                            url: string;
                            secret: string;
                        }[];
                        /** @default [] */
                        emails?: string[];
                    };
                    quiet_minutes?: number;
                    enabled?: boolean;
                };
            };
        };
        responses: {
            /** @description The rule */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        rule: components["schemas"]["AlarmRule"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getAlarms: {
        parameters: {
            query?: {
                status?: "active" | "acknowledged" | "cleared";
                severity?: "critical" | "major" | "minor" | "warning";
                device_id?: string;
                limit?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Alarms */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        alarms: components["schemas"]["Alarm"][];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            500: components["responses"]["Error500"];
        };
    };
    getAlarmsId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The alarm */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        alarm: components["schemas"]["AlarmDetail"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    postAlarmsIdAck: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The alarm */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        alarm: components["schemas"]["Alarm"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            409: components["responses"]["Error409"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdExport: {
        parameters: {
            query?: {
                from?: string;
                to?: string;
                entity_id?: string;
                format?: "csv" | "jsonl";
                source?: "raw" | "5m" | "1h";
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The export */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        export: components["schemas"]["DeviceExport"];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    postExports: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "from": "2026-01-01T00:00:00Z",
                 *       "to": "2026-02-01T00:00:00Z",
                 *       "format": "csv"
                 *     }
                 */
                "application/json": {
                    /** Format: date-time */
                    from: string;
                    /** Format: date-time */
                    to: string;
                    /**
                     * @default csv
                     * @enum {string}
                     */
                    format?: "csv" | "jsonl";
                    /**
                     * @default raw
                     * @enum {string}
                     */
                    source?: "raw" | "5m" | "1h";
                    device_ids?: number[];
                };
            };
        };
        responses: {
            /** @description The job */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        job: components["schemas"]["ExportJob"];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getExportsId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        job: components["schemas"]["ExportJob"];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getAudit: {
        parameters: {
            query?: {
                actor?: string;
                action?: string;
                from?: string;
                to?: string;
                cursor?: string;
                limit?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of entries, newest first */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        entries: components["schemas"]["AuditEntry"][];
                        /** @description Pass as `cursor` for the next (older) page */
                        next_cursor: string | null;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdMaintenance: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Events */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        events: components["schemas"]["MaintenanceEvent"][];
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    postDevicesIdMaintenance: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "kind": "inspection",
                 *       "note": "bearings checked"
                 *     }
                 */
                "application/json": {
                    /** @enum {string} */
                    kind: "failure" | "repair" | "replacement" | "inspection";
                    /** @description When it happened (ISO 8601); now when left out; never ahead of now */
                    time?: string;
                    note?: string;
                };
            };
        };
        responses: {
            /** @description The event */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        event: components["schemas"]["MaintenanceEvent"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    putDevicesIdEntitiesEntityIdLimit: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                entity_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "above": 90
                 *     }
                 */
                "application/json": {
                    /** @description The reading must stay at or below this */
                    above?: number;
                    /** @description The reading must stay at or above this */
                    below?: number;
                };
            };
        };
        responses: {
            /** @description The limit now in force */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        entity_id: string;
                        limit: components["schemas"]["EntityLimit"] | null;
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdHealth: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Health */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeviceHealth"];
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getMaintenanceDevices: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Devices with their RUL */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        devices: ({
                            id: number;
                            device_id: string;
                            rul: components["schemas"]["RemainingUsefulLife"] | null;
                        } & {
                            [key: string]: unknown;
                        })[];
                    };
                };
            };
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            500: components["responses"]["Error500"];
        };
    };
    getMaintenanceModels: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Models */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        models: components["schemas"]["FleetModel"][];
                    };
                };
            };
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            500: components["responses"]["Error500"];
        };
    };
    postMaintenanceModels: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "device_type": "press",
                 *       "step_unit": "hours"
                 *     }
                 */
                "application/json": {
                    /** @description The fleet: the tenant's devices of this type */
                    device_type: string;
                    /**
                     * @description What one step of life is: an hour of readings, or one reading time per operating cycle
                     * @default hours
                     * @enum {string}
                     */
                    step_unit?: "cycles" | "hours";
                };
            };
        };
        responses: {
            /** @description The request, queued for the scheduled trainer */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        request: {
                            device_type: string;
                            /** @enum {string} */
                            step_unit: "cycles" | "hours";
                            /** @description ISO 8601 time, UTC */
                            requested_at: string;
                        } & {
                            [key: string]: unknown;
                        };
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    postDevicesIdPatternsDiscover: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /** @example {} */
                "application/json": {
                    /** @description Sensor or number entities to find the device's modes in; default: its sensors (up to 8), else its numbers */
                    entity_ids?: string[];
                    /**
                     * Format: date-time
                     * @description Start of the history to learn from; default: 7 days before `to`
                     */
                    from?: string;
                    /**
                     * Format: date-time
                     * @description End of the history; default: now
                     */
                    to?: string;
                };
            };
        };
        responses: {
            /** @description The job */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        job: components["schemas"]["PatternJob"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            422: components["responses"]["Error422"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdPatternsJobsJobId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                job_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        job: components["schemas"]["PatternJob"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdPatterns: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Patterns */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        patterns: components["schemas"]["Pattern"][];
                        current_pattern: components["schemas"]["CurrentPattern"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    patchDevicesIdPatternsPatternId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
                pattern_id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "label": "full load"
                 *     }
                 */
                "application/json": {
                    /** @description The name users know the mode by ("idle", "full load"); null removes it */
                    label: string | null;
                };
            };
        };
        responses: {
            /** @description The pattern */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        pattern: components["schemas"]["Pattern"];
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            413: components["responses"]["Error413"];
            415: components["responses"]["Error415"];
            500: components["responses"]["Error500"];
        };
    };
    getDevicesIdPatternsTimeline: {
        parameters: {
            query?: {
                /** @description Default: a day before `to` */
                from?: string;
                /** @description Default: now */
                to?: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Segments, oldest first */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        segments: ({
                            /** @description ISO 8601 time, UTC */
                            from: string;
                            /** @description ISO 8601 time, UTC */
                            to: string;
                            pattern_id: number | null;
                            label: string | null;
                            novel: boolean;
                        } & {
                            [key: string]: unknown;
                        })[];
                        window_seconds: number | null;
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            400: components["responses"]["Error400"];
            401: components["responses"]["Error401"];
            403: components["responses"]["Error403"];
            404: components["responses"]["Error404"];
            500: components["responses"]["Error500"];
        };
    };
    getOpenapiJson: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OpenAPI 3.1 */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        openapi: string;
                    } & {
                        [key: string]: unknown;
                    };
                };
            };
            500: components["responses"]["Error500"];
        };
    };
}
