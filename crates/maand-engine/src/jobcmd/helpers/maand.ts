// maand job-command helper for Bun (embedded in the maand binary, written next to every job
// command). Every API function is async and returns a fetch Response. GET requests carry their
// parameters in the query string.

const env = (name: string, fallback = ""): string => process.env[name] ?? fallback;

export const allocationId = (): string => env("ALLOCATION_ID");
export const allocationIp = (): string => env("ALLOCATION_IP");
export const allocationIndex = (): string => env("ALLOCATION_INDEX");
export const isAllocationDisabled = (): boolean => env("DISABLED", "0") === "1";
export const commandEvent = (): string => env("EVENT");
export const commandName = (): string => env("COMMAND");
export const jobName = (): string => env("JOB");

function baseUrl(): string {
  return `http://${env("JOB_COMMAND_API_HOST", "127.0.0.1") || "127.0.0.1"}:${env("JOB_COMMAND_API_PORT", "8080") || "8080"}`;
}

function headers(): Record<string, string> {
  return {
    "Content-Type": "application/json",
    Authorization: `Bearer ${env("JOB_COMMAND_API_TOKEN")}`,
    "X-ALLOCATION-ID": allocationId(),
    EVENT: commandEvent(),
    COMMAND: commandName(),
  };
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string>;
  timeoutMs?: number;
}

function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  let url = baseUrl() + path;
  if (opts.query) url += "?" + new URLSearchParams(opts.query).toString();
  const init: RequestInit = { method, headers: headers() };
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  if (opts.timeoutMs) init.signal = AbortSignal.timeout(opts.timeoutMs);
  return fetch(url, init);
}

export const getStoreValue = (namespace: string, key: string) => request("GET", "/kv", { query: { namespace, key } });
export const putRolloutOrder = (order: string | string[]) =>
  request("PUT", "/kv", {
    body: { namespace: `maand/job/${jobName()}`, key: "rollout_order", value: Array.isArray(order) ? order.join(",") : order },
  });
export const getRolloutOrder = () => getStoreValue(`maand/job/${jobName()}`, "rollout_order");
export const putJobVariable = (key: string, value: string) =>
  request("PUT", "/kv", { body: { namespace: `vars/job/${jobName()}`, key, value } });
export const putJobSecret = (key: string, value: string) =>
  request("PUT", "/kv/secret", { body: { namespace: `secrets/job/${jobName()}`, key, value } });
export const listJobKeys = (namespace?: string) =>
  request("GET", "/kv/keys", namespace ? { query: { namespace } } : {});
export const deleteJobVariable = (key: string) =>
  request("DELETE", "/kv", { body: { namespace: `vars/job/${jobName()}`, key } });
export const deleteJobSecret = (key: string) =>
  request("DELETE", "/kv/secret", { body: { namespace: `secrets/job/${jobName()}`, key } });
export const listCommandDemands = () => request("GET", "/demands");
export const acquireSemaphore = (name: string, capacity = 1, timeoutSeconds = 600) =>
  request("POST", "/semaphore/acquire", {
    body: { name, capacity, timeout_seconds: timeoutSeconds },
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
export const releaseSemaphore = (name: string) => request("POST", "/semaphore/release", { body: { name } });
export const semaphoreStatus = (name: string) => request("GET", "/semaphore/status", { query: { name } });

// Aliases kept for older job commands.
export const getAllocationId = allocationId;
export const getAllocationIp = allocationIp;
export const getAllocationIndex = allocationIndex;
export const getEvent = commandEvent;
export const getCommand = commandName;
export const getJob = jobName;
export const kvGet = getStoreValue;
export const kvPut = putJobVariable;
export const kvPutSecret = putJobSecret;
export const getDemands = listCommandDemands;
export const putDeployOrder = putRolloutOrder;
export const getDeployOrder = getRolloutOrder;
