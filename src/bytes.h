/*
 * Byte-order helpers shared by every module: loads and stores of fixed-width
 * integers at any alignment, and sign-preserving casts between int64 and
 * uint64 (TL longs are signed; the wire is two's complement little-endian).
 */
#ifndef MTCI_BYTES_H
#define MTCI_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t mtci_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t mtci_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t mtci_le64(const uint8_t *p) {
  return (uint64_t)mtci_le32(p) | (uint64_t)mtci_le32(p + 4) << 32;
}
static inline uint16_t mtci_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t mtci_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void mtci_put_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void mtci_put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void mtci_put_le64(uint8_t *p, uint64_t v) {
  mtci_put_le32(p, (uint32_t)v);
  mtci_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline void mtci_put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void mtci_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Reinterpret without implementation-defined conversions. */
static inline int64_t mtci_i64_of(uint64_t v) {
  int64_t r;
  memcpy(&r, &v, sizeof r);
  return r;
}
static inline uint64_t mtci_u64_of(int64_t v) {
  uint64_t r;
  memcpy(&r, &v, sizeof r);
  return r;
}

#endif /* MTCI_BYTES_H */
