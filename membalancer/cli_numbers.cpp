#include "membalancer/cli_numbers.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <string>

namespace mb {

void refuse_octal_integers(CLI::App& app) {
  const CLI::Validator no_leading_zero(
      [](std::string& text) -> std::string {
        const size_t sign = !text.empty() && (text[0] == '-' || text[0] == '+');
        if (text.size() > sign + 1 && text[sign] == '0' && std::isdigit(static_cast<unsigned char>(text[sign + 1])))
          return "'" + text + "' has a leading zero (octal to some readers, decimal to others): write it without";
        return std::string();
      },
      "");
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name();
    if (type == "INT" || type == "UINT") opt->check(no_leading_zero);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) refuse_octal_integers(*sub);
}

}  // namespace mb
