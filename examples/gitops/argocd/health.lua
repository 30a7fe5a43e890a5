-- Argo CD health check for strongroom's kinds (strongroom.dev/v1alpha1), kstatus style.
-- Registered for each kind in argocd-cm.yaml; the same script serves them all.
--   Stalled=True                                  -> Degraded (the operator gave up until something changes)
--   status not written for the current generation -> Progressing
--   Ready=True                                    -> Healthy
--   Reconciling=True, or Ready=Unknown            -> Progressing
--   Ready=False                                   -> Degraded, except while the operator still works on it
--                                                    (WaitingForResources, NotFound-style waits: Progressing)
--   no conditions at all: Driver objects carry none (Healthy); anything else waits (Progressing)
local hs = {}
local waiting = {
  WaitingForResources = true, WaitingForDependencies = true, WorkloadNotFound = true,
  Provisioning = true, Pending = true, Deleting = true, StoreNotFound = true, DriverNotFound = true,
  SigningKeyMissing = true,
}
local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end
local ready = condition("Ready")
local stalled = condition("Stalled")
local reconciling = condition("Reconciling")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason
  return hs
end
if ready == nil then
  if obj.kind == "Driver" then
    hs.status = "Healthy"
    hs.message = "remote driver registered"
  else
    hs.status = "Progressing"
    hs.message = "waiting for the strongroom operator"
  end
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration or ready.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "the operator has not reconciled generation " .. generation .. " yet"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
elseif ready.status == "Unknown" or waiting[ready.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = ready.message or ready.reason
return hs
