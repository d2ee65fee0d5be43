#ifndef BONESEG_JPEG_CODEC_H
#define BONESEG_JPEG_CODEC_H
#include <stddef.h>
#include <stdint.h>

/// A JPEG as libjpeg-turbo sees it, and what decoding it gives: gray stays
/// gray (1 channel), YCbCr and RGB become RGB (3 channels), 8 bits a sample.
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;        // 1 gray or 3 RGB, after decoding
    int components;      // components in the file (1, 3 or 4)
    int color_space;     // libjpeg's J_COLOR_SPACE of the file
    int progressive;
} bp_jpeg_info;

/// Reads only the headers (up to the first scan). Returns 0 on success, else
/// writes a one-line message into err. CMYK, YCCK and unknown colour spaces
/// fail here, since decoding would.
int bp_jpeg_read_header(const uint8_t *data, size_t length, bp_jpeg_info *info,
                        char *err, size_t err_length);

/// Decodes a whole JPEG held in memory. The frame's dimensions are checked
/// against max_width/max_height right after the header, before libjpeg or this
/// function allocates any pixel memory. Truncated or corrupt entropy-coded
/// data is an error, not a grey-filled image. On success *samples holds
/// width*height*channels values in 0...255, to be released with bp_jpeg_free.
int bp_jpeg_decode(const uint8_t *data, size_t length, uint32_t max_width,
                   uint32_t max_height, bp_jpeg_info *info, uint16_t **samples,
                   char *err, size_t err_length);

void bp_jpeg_free(void *pointer);

#endif
