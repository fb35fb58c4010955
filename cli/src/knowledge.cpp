// `hio knowledge`: the latest knowledge hio-discovery published, as a table of clusters or as JSON.
#include <hio/cli/commands.hpp>
#include <hio/common/http.hpp>
#include <hio/common/json.hpp>

#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

namespace hio::cli {

namespace {

using json = nlohmann::json;

std::string number(const json& v) {
  if (!v.is_number()) return v.dump();
  std::ostringstream out;
  out << std::setprecision(6) << v.get<double>();
  return out.str();
}

std::string ranges_text(const json& ranges, const json& values) {
  std::string out;
  for (const auto& [name, list] : values.items()) {
    if (!out.empty()) out += ", ";
    out += name + " ";
    std::string joined;
    for (const auto& v : list) joined += (joined.empty() ? "" : "|") + (v.is_string() ? v.get<std::string>() : v.dump());
    out += joined;
  }
  for (const auto& [name, mm] : ranges.items()) {
    if (!out.empty()) out += ", ";
    out += name + " ";
    if (mm.is_array() && mm.size() == 2 && mm[0] == mm[1]) {
      out += number(mm[0]);
    } else if (mm.is_array() && mm.size() == 2) {
      out += number(mm[0]) + ".." + number(mm[1]);
    } else {
      out += mm.dump();
    }
  }
  return out.empty() ? "-" : out;
}

// " (cut: mojena, score 2.31)", or " (cut: --k 3)"; empty for a document without a readable "cut".
std::string cut_text(const nlohmann::json& doc) {
  const auto it = doc.find("cut");
  if (it == doc.end() || !it->is_object()) return "";
  const auto by = it->find("by"), criterion = it->find("criterion"), score = it->find("score");
  std::ostringstream out;
  if (by != it->end() && *by == "k") {
    out << " (cut: --k)";
  } else if (by != it->end() && *by == "threshold") {
    out << " (cut: --threshold)";
  } else if (criterion != it->end() && criterion->is_string()) {
    out << " (cut: " << criterion->get<std::string>();
    if (score != it->end() && score->is_number()) out << ", score " << std::setprecision(3) << score->get<double>();
    out << ")";
  }
  return out.str();
}

}  // namespace

int knowledge(const knowledge_options& o) {
  http::client c(o.repository);
  auto r = c.get("/v1/knowledge/latest");
  if (!r) {
    std::cerr << "hio knowledge: cannot reach the repository at " << o.repository << ": " << r.error().message << "\n";
    return 1;
  }
  if (r->status == 404) {
    std::cerr << "hio knowledge: no knowledge published yet (is hio-discovery running?)\n";
    return 1;
  }
  if (r->status != 200) {
    std::cerr << "hio knowledge: the repository answered " << r->status << ": " << r->body << "\n";
    return 1;
  }
  auto doc = hio::parse_json_or_discarded(r->body);
  if (doc.is_discarded()) {
    std::cerr << "hio knowledge: the repository sent invalid JSON\n";
    return 1;
  }
  if (o.format == "json") {
    std::cout << doc.dump() << std::endl;
    return 0;
  }
  std::cout << "knowledge version " << doc.value("version", 0) << ": " << doc.value("points", 0) << " tuples, "
            << doc.value("groups", 0) << " parameter points, method " << doc.value("method", std::string("?"))
            << ", " << doc["clusters"].size() << " clusters" << cut_text(doc) << "\n";
  std::cout << std::left << std::setw(7) << "label" << std::setw(9) << "size" << std::setw(22)
            << "representative" << "parameter ranges\n";
  for (const auto& cl : doc["clusters"]) {
    std::cout << std::left << std::setw(7) << cl.value("label", 0) << std::setw(9) << cl.value("size", 0)
              << std::setw(22) << cl.value("representative_tuple", std::uint64_t{0})
              << ranges_text(cl.value("params_ranges", json::object()), cl.value("params_values", json::object()))
              << "\n";
  }
  std::cout.flush();
  return 0;
}

}  // namespace hio::cli
