#include "console.hpp"

#include "config.hpp"

namespace es {

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::vector<std::string> Console::store(const std::string& key, const std::string& value) {
  const std::string why = validateConfigValue(key, value);
  if (!why.empty()) return {"error: " + key + ": " + why};
  if (!store_.put(key, value)) return {"error: could not write " + key};
  return {"ok: " + key + " saved (reboot to apply)"};
}

std::vector<std::string> Console::show() {
  std::vector<std::string> out;
  for (const auto& k : configKeys()) {
    std::string v;
    std::string shown;
    if (!store_.get(k.key, v)) {
      shown = "(unset)";
    } else if (k.secret) {
      shown = "(set, hidden)";
    } else if (k.multiline) {
      shown = "(PEM, " + std::to_string(v.size()) + " bytes)";
    } else {
      shown = v;
    }
    out.push_back(std::string(k.key) + " = " + shown);
  }
  return out;
}

std::vector<std::string> Console::handleLine(const std::string& rawLine) {
  if (!pendingKey_.empty()) {
    const std::string line = trim(rawLine);
    if (line.empty() && pendingValue_.empty()) return {};
    pendingValue_ += line;
    pendingValue_ += '\n';
    if (line.compare(0, 9, "-----END ") != 0) return {};
    const std::string key = pendingKey_;
    pendingKey_.clear();
    std::string value;
    value.swap(pendingValue_);
    return store(key, value);
  }

  const std::string line = trim(rawLine);
  if (line.empty()) return {};
  const size_t sp = line.find(' ');
  const std::string cmd = line.substr(0, sp);
  const std::string rest = sp == std::string::npos ? "" : trim(line.substr(sp + 1));

  if (cmd == "help") {
    std::vector<std::string> out = {"commands: set <key> <value> | set <key> (PEM, multi-line) | "
                                    "unset <key> | show | reboot | factory-reset | help",
                                    "keys:"};
    for (const auto& k : configKeys()) out.push_back(std::string("  ") + k.key + ": " + k.help);
    return out;
  }
  if (cmd == "show") return show();
  if (cmd == "reboot") {
    reboot_ = true;
    return {"rebooting"};
  }
  if (cmd == "factory-reset") {
    for (const auto& k : configKeys()) store_.remove(k.key);
    return {"ok: configuration erased (reboot to apply)"};
  }
  if (cmd == "unset") {
    if (!findConfigKey(rest)) return {"error: unknown key '" + rest + "'"};
    store_.remove(rest);
    return {"ok: " + rest + " removed"};
  }
  if (cmd == "set") {
    const size_t ksp = rest.find(' ');
    const std::string key = rest.substr(0, ksp);
    // Values may legitimately contain spaces (SSIDs, passwords), so everything after the
    // key is the value, verbatim except for the single separating space.
    const std::string value = ksp == std::string::npos ? "" : rest.substr(ksp + 1);
    const ConfigKey* k = findConfigKey(key);
    if (!k) return {"error: unknown key '" + key + "' (try help)"};
    if (k->multiline && value.empty()) {
      pendingKey_ = key;
      pendingValue_.clear();
      return {"paste the PEM block for " + key + "; it ends at the -----END line"};
    }
    if (value.empty()) return {"error: missing value (use unset to remove)"};
    return store(key, value);
  }
  return {"error: unknown command '" + cmd + "' (try help)"};
}

}  // namespace es
