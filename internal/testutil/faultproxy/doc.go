// Package faultproxy puts faults between a component under test and a
// real server: TCP (reset after N bytes, stall, black-hole, latency) and
// HTTP (answer 5xx for the first N matching requests, record headers).
package faultproxy
