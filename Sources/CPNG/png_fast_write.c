// A minimal PNG writer around libdeflate: signature, IHDR, one IDAT, IEND.
// libdeflate compresses a whole buffer at once, several times faster than zlib
// at its fastest level, and its zlib wrapper is exactly what IDAT holds.
#include "png_fast_write.h"
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

// Writes length, type and CRC around the chunk data already at p + 8.
static size_t close_chunk(uint8_t *p, const char *type, size_t length) {
    put32(p, (uint32_t)length);
    memcpy(p + 4, type, 4);
    uint32_t crc = libdeflate_crc32(0, p + 4, 4 + length);
    put32(p + 8 + length, crc);
    return 12 + length;
}

int bp_png_encode_fast(const uint8_t *pixels, uint32_t width, uint32_t height,
                       int channels, int level, uint8_t **out, size_t *out_length,
                       char *err, size_t err_length) {
    *out = NULL;
    *out_length = 0;
    int color_type;
    switch (channels) {
    case 1: color_type = 0; break;
    case 3: color_type = 2; break;
    case 4: color_type = 6; break;
    default:
        snprintf(err, err_length, "cannot encode %d channels", channels);
        return -1;
    }
    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) {
        snprintf(err, err_length, "cannot encode a %ux%u image", width, height);
        return -1;
    }
    if (level < 1) level = 1;
    if (level > 12) level = 12;
    size_t row_bytes = (size_t)width * (size_t)channels;
    size_t filtered_length = (row_bytes + 1) * (size_t)height;

    uint8_t *filtered = malloc(filtered_length);
    struct libdeflate_compressor *compressor = libdeflate_alloc_compressor(level);
    if (!filtered || !compressor) {
        free(filtered);
        if (compressor) libdeflate_free_compressor(compressor);
        snprintf(err, err_length, "out of memory for a %ux%u PNG", width, height);
        return -1;
    }
    // "Up": each byte minus the byte above it; the first row is left as it is.
    for (uint32_t y = 0; y < height; y++) {
        uint8_t *row = filtered + (size_t)y * (row_bytes + 1);
        const uint8_t *current = pixels + (size_t)y * row_bytes;
        if (y == 0) {
            row[0] = 0;
            memcpy(row + 1, current, row_bytes);
        } else {
            const uint8_t *above = current - row_bytes;
            row[0] = 2;
            for (size_t i = 0; i < row_bytes; i++) row[1 + i] = (uint8_t)(current[i] - above[i]);
        }
    }

    size_t bound = libdeflate_zlib_compress_bound(compressor, filtered_length);
    size_t capacity = 8 + (12 + 13) + (12 + bound) + 12;
    uint8_t *png = malloc(capacity);
    if (!png) {
        free(filtered);
        libdeflate_free_compressor(compressor);
        snprintf(err, err_length, "out of memory for a %ux%u PNG", width, height);
        return -1;
    }
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(png, signature, 8);
    size_t at = 8;

    uint8_t *ihdr = png + at + 8;
    put32(ihdr, width);
    put32(ihdr + 4, height);
    ihdr[8] = 8;            // bit depth
    ihdr[9] = (uint8_t)color_type;
    ihdr[10] = 0;           // deflate
    ihdr[11] = 0;           // adaptive filtering (per-row filter bytes)
    ihdr[12] = 0;           // not interlaced
    at += close_chunk(png + at, "IHDR", 13);

    size_t compressed = libdeflate_zlib_compress(compressor, filtered, filtered_length, png + at + 8, bound);
    free(filtered);
    libdeflate_free_compressor(compressor);
    if (compressed == 0 || compressed > 0x7fffffffu) {
        free(png);
        snprintf(err, err_length, "could not compress a %ux%u PNG", width, height);
        return -1;
    }
    at += close_chunk(png + at, "IDAT", compressed);
    at += close_chunk(png + at, "IEND", 0);

    *out = png;
    *out_length = at;
    return 0;
}

void bp_png_fast_free(void *pointer) { free(pointer); }
