-- wrk script for scripts/bench-intake-wrk.sh: every request is an Alertmanager v4 webhook body
-- of BATCH new KubePodCrashLooping alerts, spread over 100 Deployments `bench-<n>` in
-- namespace `bench`, each alert with its own fingerprint: the bodies of `autofix bench intake`
-- with --distinct 100.
local batch = tonumber(os.getenv("BATCH") or "1")
local token = os.getenv("TOKEN")
local workloads = 100
local threads = 0
local sent = 0
-- Pod name suffixes from the characters the Kubernetes name generator uses.
local suffixes = { "bcdfg", "hjklm", "npqrs", "tvwxz", "24567" }

-- Each wrk thread numbers its alerts from its own base, so fingerprints never repeat.
function setup(thread)
    thread:set("base", threads * 1000000000)
    threads = threads + 1
end

function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. token
end

local function alert(id)
    return string.format(
        '{"status":"firing","labels":{"alertname":"KubePodCrashLooping","cluster":"bench",'
            .. '"namespace":"bench","pod":"bench-%d-b7c9d4f5x-%s","container":"app",'
            .. '"reason":"CrashLoopBackOff","severity":"warning","job":"kube-state-metrics"},'
            .. '"annotations":{"summary":"Pod is crash looping."},'
            .. '"startsAt":"2026-11-28T06:00:00.000Z","endsAt":"0001-01-01T00:00:00Z",'
            .. '"generatorURL":"http://prometheus.bench.invalid/graph","fingerprint":"%016x"}',
        id % workloads, suffixes[id % 5 + 1], id)
end

function request()
    local alerts = {}
    for i = 1, batch do
        sent = sent + 1
        alerts[i] = alert(base + sent)
    end
    local body = '{"receiver":"kube-autofix","status":"firing","alerts":['
        .. table.concat(alerts, ",")
        .. '],"groupLabels":{"alertname":"KubePodCrashLooping","namespace":"bench"},'
        .. '"commonLabels":{"alertname":"KubePodCrashLooping","namespace":"bench"},'
        .. '"commonAnnotations":{},"externalURL":"http://alertmanager.bench.invalid",'
        .. '"version":"4","groupKey":"{}:{alertname=\\"KubePodCrashLooping\\"}","truncatedAlerts":0}'
    return wrk.format(nil, nil, nil, body)
end
