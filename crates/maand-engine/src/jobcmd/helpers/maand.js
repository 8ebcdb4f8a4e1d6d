// maand job-command helper for Node and Bun (embedded in the maand binary, written next to every
// job command). Every API function is async and returns a fetch Response. GET requests carry their
// parameters in the query string (fetch cannot send a GET body).
"use strict";

const env = (name, fallback = "") => process.env[name] ?? fallback;

const allocationId = () => env("ALLOCATION_ID");
const allocationIp = () => env("ALLOCATION_IP");
const allocationIndex = () => env("ALLOCATION_INDEX");
const isAllocationDisabled = () => env("DISABLED", "0") === "1";
const commandEvent = () => env("EVENT");
const commandName = () => env("COMMAND");
const jobName = () => env("JOB");

function baseUrl() {
  return `http://${env("JOB_COMMAND_API_HOST", "127.0.0.1") || "127.0.0.1"}:${env("JOB_COMMAND_API_PORT", "8080") || "8080"}`;
}

function headers() {
  return {
    "Content-Type": "application/json",
    Authorization: `Bearer ${env("JOB_COMMAND_API_TOKEN")}`,
    "X-ALLOCATION-ID": allocationId(),
    EVENT: commandEvent(),
    COMMAND: commandName(),
  };
}

function request(method, path, { body, query, timeoutMs } = {}) {
  let url = baseUrl() + path;
  if (query) url += "?" + new URLSearchParams(query).toString();
  const init = { method, headers: headers() };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (timeoutMs) init.signal = AbortSignal.timeout(timeoutMs);
  return fetch(url, init);
}

const getStoreValue = (namespace, key) => request("GET", "/kv", { query: { namespace, key } });
const putRolloutOrder = (order) =>
  request("PUT", "/kv", {
    body: { namespace: `maand/job/${jobName()}`, key: "rollout_order", value: Array.isArray(order) ? order.join(",") : String(order) },
  });
const getRolloutOrder = () => getStoreValue(`maand/job/${jobName()}`, "rollout_order");
const putJobVariable = (key, value) =>
  request("PUT", "/kv", { body: { namespace: `vars/job/${jobName()}`, key, value: String(value) } });
const putJobSecret = (key, value) =>
  request("PUT", "/kv/secret", { body: { namespace: `secrets/job/${jobName()}`, key, value: String(value) } });
const listJobKeys = (namespace) => request("GET", "/kv/keys", namespace ? { query: { namespace } } : {});
const deleteJobVariable = (key) => request("DELETE", "/kv", { body: { namespace: `vars/job/${jobName()}`, key } });
const deleteJobSecret = (key) => request("DELETE", "/kv/secret", { body: { namespace: `secrets/job/${jobName()}`, key } });
const listCommandDemands = () => request("GET", "/demands");
const acquireSemaphore = (name, capacity = 1, timeoutSeconds = 600) =>
  request("POST", "/semaphore/acquire", {
    body: { name, capacity, timeout_seconds: timeoutSeconds },
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
const releaseSemaphore = (name) => request("POST", "/semaphore/release", { body: { name } });
const semaphoreStatus = (name) => request("GET", "/semaphore/status", { query: { name } });

module.exports = {
  allocationId,
  allocationIp,
  allocationIndex,
  isAllocationDisabled,
  commandEvent,
  commandName,
  jobName,
  getStoreValue,
  putRolloutOrder,
  getRolloutOrder,
  putJobVariable,
  putJobSecret,
  listJobKeys,
  deleteJobVariable,
  deleteJobSecret,
  listCommandDemands,
  acquireSemaphore,
  releaseSemaphore,
  semaphoreStatus,
  // Aliases kept for older job commands.
  getAllocationId: allocationId,
  getAllocationIp: allocationIp,
  getAllocationIndex: allocationIndex,
  getEvent: commandEvent,
  getCommand: commandName,
  getJob: jobName,
  kvGet: getStoreValue,
  kvPut: putJobVariable,
  kvPutSecret: putJobSecret,
  getDemands: listCommandDemands,
  putDeployOrder: putRolloutOrder,
  getDeployOrder: getRolloutOrder,
};
