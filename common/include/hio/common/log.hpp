#pragma once
// Logging: spdlog with one format for every hio process ("[time] [component] [level] message").

#include <spdlog/spdlog.h>

#include <string>

namespace hio {

// Sets the default logger's name and level ("trace", "debug", "info", "warn", "error").
void init_logging(const std::string& component, const std::string& level = "info");

}  // namespace hio
