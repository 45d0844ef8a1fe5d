// Line-oriented serial console for configuring a device in the field:
//   set <key> <value>   store a value (validated first)
//   set <key>           for PEM keys: paste the block, it ends at the "-----END" line
//   unset <key>         remove a value
//   show                list values (secrets masked)
//   reboot              restart to apply
//   factory-reset       erase every key
//   help
#pragma once

#include <string>
#include <vector>

#include "interfaces.hpp"

namespace es {

class Console {
 public:
  explicit Console(KeyValueStore& store) : store_(store) {}

  // Handles one input line (without its line terminator) and returns the lines to print.
  std::vector<std::string> handleLine(const std::string& line);
  bool rebootRequested() const { return reboot_; }
  // True while a multi-line PEM value is being collected.
  bool collecting() const { return !pendingKey_.empty(); }

 private:
  std::vector<std::string> show();
  std::vector<std::string> store(const std::string& key, const std::string& value);
  KeyValueStore& store_;
  bool reboot_ = false;
  std::string pendingKey_;
  std::string pendingValue_;
};

}  // namespace es
