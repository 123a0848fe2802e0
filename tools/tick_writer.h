// tick_writer.h — Quote -> one tick line in exactly the formats the apiserver
// parses (apiserver/parse.h, docs/ticks.md), so tickfan-replay can feed an
// apiserver through its stdin: or tcp:// source.
//
// Every field is written explicitly (market, status, open/high/low, all five
// book levels, ts_ns in nanoseconds), so the apiserver's normalisation has
// nothing to fill in and parse(write(q)) == q bit for bit (receive_ts_ns
// aside, which the apiserver stamps itself). A test checks that round trip
// with the apiserver's own LineParser.
#pragma once
#include <string>
#include <string_view>

#include "quote.h"

namespace tickfan::tools {

enum class TickFormat { jsonl, csv };

// "jsonl" or "csv"; false for anything else.
bool tick_format_from_name(std::string_view name, TickFormat* out);

// The CSV header line (with its '\n'); a CSV stream starts with it, and every
// new TCP client gets it again before its first row.
std::string_view csv_header();

// Appends one line, '\n'-terminated, for `q`.
void append_tick_line(const Quote& q, TickFormat format, std::string* out);

}  // namespace tickfan::tools
