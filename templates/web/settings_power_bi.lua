-- /settings/power-bi (organization owners): Settings ▸ Power BI. Which Entra application pbiport
-- acts with: Use SSO credentials (the deployment's sign-in app) or Use custom credentials (Tenant
-- ID, Client ID, Client Secret). The secret is write-only: once saved the page says "set" and an
-- empty field keeps it. Test connection proves what the form holds without saving it (pbiport.js
-- shows the answer in place; without JavaScript the page comes back with it); Save proves it too,
-- then stores it.
-- view.settings: as GET /api/settings/powerbi (mode, tenant_id, client_id, has_client_secret,
-- application_name, updated_at), absent before the first save; view.sso_available: the deployment
-- has a sign-in app (PBIPORT_SSO_*); view.redirect_uri: what the app must list as its redirect
-- URI; view.saved: just saved; view.form = { mode, tenant_id, client_id, secret_typed }: what the
-- posted form held; view.test = { ok, application_name | code, message }: the test's answer;
-- view.error = { code, message }: why a save was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local function radio(id, value, checked, label, disabled, hint_id)
  return h.div{ class = "choice",
    h.input{ type = "radio", id = id, name = "mode", value = value, checked = checked, disabled = disabled,
             ["aria-describedby"] = hint_id },
    h.label{ ["for"] = id, label },
  }
end

local function test_result(view)
  local t = view.test
  local inner
  if t and t.ok then
    inner = h.p{ class = "success", "The connection works. Application: ", h.strong{ t.application_name } }
  elseif t then
    inner = h.div{ class = "error-summary",
      h.p{ h.strong{ "The connection does not work." } },
      h.p{ class = "message", t.message },
      h.p{ class = "muted", "Code ", h.code{ t.code } } }
  end
  -- pbiport.js puts a new answer here without reloading the page
  return h.div{ id = "test-result", class = "test-result", role = "status", inner }
end

return function(view)
  local s = view.settings or {}
  local form = view.form or {}
  local mode = form.mode or s.mode or (view.sso_available and "sso" or "custom")
  local custom_saved = s.mode == "custom"
  local tenant = form.tenant_id or (custom_saved and s.tenant_id) or nil
  local client = form.client_id or (custom_saved and s.client_id) or nil
  local secret_set = custom_saved and s.has_client_secret
  local err = view.error
  local secret_hint
  if form.secret_typed then
    secret_hint = "The secret you typed is not shown again: type it once more to save it."
  elseif secret_set then
    secret_hint = "set — replace it by typing a new one, or leave the field empty to keep it."
  else
    secret_hint = "The application's client secret (its value, not its id)."
  end
  return layout.page(view, {
    title = "Power BI",
    crumbs = { { "Settings", "/settings/power-bi" } },
    lead = h.p{ "The Microsoft Entra application pbiport uses for your organization's Power BI: members connect ",
                "their Power BI account through it and publish as themselves." },
    main = {
      view.saved and h.p{ class = "notice", role = "status", "Saved.",
        s.application_name and { " Application: ", h.strong{ s.application_name } } },
      err and h.div{ class = "error-summary", role = "alert", id = "settings-error",
        h.h2{ "Not saved" }, h.p{ class = "message", err.message }, h.p{ class = "muted", "Code ", h.code{ err.code } } },
      view.settings and h.dl{ class = "details",
        h.dt{ "Now in use" },
        h.dd{ s.mode == "sso" and "SSO credentials" or "Custom credentials",
              s.application_name and { " · ", h.strong{ s.application_name } } },
        h.dt{ "Saved" }, h.dd{ pbi.time(s.updated_at) },
      },
      h.form{ method = "post", action = view.page.path, class = "stack settings-form",
              ["aria-describedby"] = err and "settings-error" or nil,
        layout.csrf(view),
        h.fieldset{ class = { "field", "choices", "mode-choice" },
          h.legend{ "Credentials" },
          radio("mode-sso", "sso", mode == "sso", "Use SSO credentials", not view.sso_available,
                "mode-sso-hint"),
          h.p{ class = "hint", id = "mode-sso-hint",
               view.sso_available and "The application this server signs people in with (PBIPORT_SSO_*)."
                 or "Not available: this server has no sign-in application (PBIPORT_SSO_* are not set)." },
          radio("mode-custom", "custom", mode == "custom", "Use custom credentials"),
          h.div{ class = "custom-fields",
            layout.field("tenant-id", "Tenant ID",
              h.input{ type = "text", id = "tenant-id", name = "tenant_id", value = tenant, spellcheck = "false",
                       autocomplete = "off" }),
            layout.field("client-id", "Client ID",
              h.input{ type = "text", id = "client-id", name = "client_id", value = client, spellcheck = "false",
                       autocomplete = "off" }),
            layout.field("client-secret", "Client Secret", {
              h.p{ class = "hint", id = "client-secret-hint", secret_hint },
              h.input{ type = "password", id = "client-secret", name = "client_secret", autocomplete = "new-password",
                       placeholder = secret_set and "set — replace" or nil,
                       ["aria-describedby"] = "client-secret-hint" } }),
          },
        },
        view.redirect_uri and h.p{ class = "hint", "Register this redirect URI with the application: ",
                                   h.code{ view.redirect_uri } },
        test_result(view),
        -- Save first: Enter in a field sends the form with the first button
        h.div{ class = "buttons",
          h.button{ type = "submit", name = "action", value = "save", "Save" },
          h.button{ type = "submit", name = "action", value = "test", class = "secondary",
                    ["data-inline-result"] = "test-result", "Test connection" },
        },
      },
    },
  })
end
