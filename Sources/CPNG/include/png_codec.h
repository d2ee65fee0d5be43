#ifndef BONESEG_PNG_CODEC_H
#define BONESEG_PNG_CODEC_H
#include <stddef.h>
#include <stdint.h>

/// What a decoded PNG holds after expansion: palette → RGB(A), tRNS → alpha,
/// gray below 8 bits → 8 bits. 16-bit samples stay 16-bit.
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;   // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bit_depth;  // 8 or 16 after expansion
    int interlaced;
    int source_color_type;
    int source_bit_depth;
} bp_png_info;

/// Reads only the header. Returns 0 on success, else writes a message into err.
int bp_png_read_header(const uint8_t *data, size_t length, bp_png_info *info,
                       char *err, size_t err_length);

/// Decodes a whole PNG held in memory. The header's dimensions are checked
/// against max_width/max_height before any pixel memory is allocated.
/// On success *samples holds width*height*channels values (8-bit ones in 0...255),
/// to be released with bp_png_free.
int bp_png_decode(const uint8_t *data, size_t length, uint32_t max_width,
                  uint32_t max_height, bp_png_info *info, uint16_t **samples,
                  char *err, size_t err_length);

void bp_png_free(void *pointer);

/// Encodes 8-bit pixels (channels 1, 3 or 4) to PNG bytes in memory.
/// On success *out holds *out_length bytes, to be released with bp_png_free.
int bp_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                  int channels, uint8_t **out, size_t *out_length,
                  char *err, size_t err_length);

#endif
