// libpng's error handling longjmps, which Swift cannot survive; this file keeps
// every setjmp on the C side and hands Swift plain return codes and messages.
#include "png_codec.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t length;
    size_t offset;
    jmp_buf jump;
    char *err;
    size_t err_length;
} reader_state;

static void on_error(png_structp png, png_const_charp message) {
    reader_state *state = (reader_state *)png_get_error_ptr(png);
    snprintf(state->err, state->err_length, "%s", message);
    longjmp(state->jump, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void read_bytes(png_structp png, png_bytep out, png_size_t count) {
    reader_state *state = (reader_state *)png_get_io_ptr(png);
    if (state->offset + count > state->length) {
        png_error(png, "file is truncated");
    }
    memcpy(out, state->data + state->offset, count);
    state->offset += count;
}

static int check_signature(const uint8_t *data, size_t length, char *err, size_t err_length) {
    if (length < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        if (length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
            snprintf(err, err_length, "not a PNG: the bytes are JPEG data");
        } else if (length == 0) {
            snprintf(err, err_length, "not a PNG: the file is empty");
        } else {
            snprintf(err, err_length, "not a PNG: bad signature");
        }
        return -1;
    }
    return 0;
}

static void fill_info(png_structp png, png_infop info_ptr, bp_png_info *info) {
    info->width = png_get_image_width(png, info_ptr);
    info->height = png_get_image_height(png, info_ptr);
    info->source_color_type = png_get_color_type(png, info_ptr);
    info->source_bit_depth = png_get_bit_depth(png, info_ptr);
    info->interlaced = png_get_interlace_type(png, info_ptr) != PNG_INTERLACE_NONE;
}

int bp_png_read_header(const uint8_t *data, size_t length, bp_png_info *info,
                       char *err, size_t err_length) {
    if (check_signature(data, length, err, err_length) != 0) return -1;
    reader_state state = {data, length, 0};
    state.err = err;
    state.err_length = err_length;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    if (!png) { snprintf(err, err_length, "out of memory"); return -1; }
    png_infop info_ptr = png_create_info_struct(png);
    if (!info_ptr) { png_destroy_read_struct(&png, NULL, NULL); snprintf(err, err_length, "out of memory"); return -1; }
    if (setjmp(state.jump)) {
        png_destroy_read_struct(&png, &info_ptr, NULL);
        return -1;
    }
    // The header itself is what the caller wants to check, so no user limits here.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &state, read_bytes);
    png_read_info(png, info_ptr);
    fill_info(png, info_ptr, info);
    info->channels = png_get_channels(png, info_ptr);
    info->bit_depth = info->source_bit_depth < 8 ? 8 : info->source_bit_depth;
    png_destroy_read_struct(&png, &info_ptr, NULL);
    return 0;
}

int bp_png_decode(const uint8_t *data, size_t length, uint32_t max_width,
                  uint32_t max_height, bp_png_info *info, uint16_t **samples,
                  char *err, size_t err_length) {
    *samples = NULL;
    if (check_signature(data, length, err, err_length) != 0) return -1;
    // IHDR is always the first chunk: refuse an oversized image from its
    // declared size alone, even when the rest of the file is missing.
    if (length >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        if (w > max_width || h > max_height) {
            snprintf(err, err_length, "image is %ux%u, over the limit of %ux%u", w, h, max_width, max_height);
            return -1;
        }
    }
    reader_state state = {data, length, 0};
    state.err = err;
    state.err_length = err_length;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
    if (!png) { snprintf(err, err_length, "out of memory"); return -1; }
    png_infop info_ptr = png_create_info_struct(png);
    if (!info_ptr) { png_destroy_read_struct(&png, NULL, NULL); snprintf(err, err_length, "out of memory"); return -1; }
    // volatile: these change after setjmp and are read after a longjmp.
    png_bytep volatile row_buffer = NULL;
    png_bytepp volatile rows = NULL;
    uint16_t *volatile result = NULL;
    if (setjmp(state.jump)) {
        free(row_buffer);
        free(rows);
        free(result);
        png_destroy_read_struct(&png, &info_ptr, NULL);
        return -1;
    }
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &state, read_bytes);
    png_read_info(png, info_ptr);
    fill_info(png, info_ptr, info);
    if (info->width == 0 || info->height == 0) {
        snprintf(err, err_length, "image has no pixels (%ux%u)", info->width, info->height);
        longjmp(state.jump, 1);
    }
    if (info->width > max_width || info->height > max_height) {
        snprintf(err, err_length, "image is %ux%u, over the limit of %ux%u",
                 info->width, info->height, max_width, max_height);
        longjmp(state.jump, 1);
    }
    int color_type = info->source_color_type;
    int bit_depth = info->source_bit_depth;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info_ptr, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_swap(png);  // host order (little endian) for uint16 rows
    png_set_interlace_handling(png);
    png_read_update_info(png, info_ptr);

    int channels = png_get_channels(png, info_ptr);
    int out_depth = png_get_bit_depth(png, info_ptr);
    size_t row_bytes = png_get_rowbytes(png, info_ptr);
    size_t pixel_count = (size_t)info->width * (size_t)info->height;
    info->channels = channels;
    info->bit_depth = out_depth;

    row_buffer = malloc(row_bytes * info->height);
    rows = malloc(sizeof(png_bytep) * info->height);
    result = malloc(sizeof(uint16_t) * pixel_count * (size_t)channels);
    if (!row_buffer || !rows || !result) {
        snprintf(err, err_length, "out of memory for %ux%u pixels", info->width, info->height);
        longjmp(state.jump, 1);
    }
    for (uint32_t y = 0; y < info->height; y++) rows[y] = row_buffer + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    size_t count = pixel_count * (size_t)channels;
    if (out_depth == 16) {
        for (uint32_t y = 0; y < info->height; y++) {
            memcpy(result + (size_t)y * info->width * channels, rows[y],
                   (size_t)info->width * channels * sizeof(uint16_t));
        }
    } else {
        size_t i = 0;
        for (uint32_t y = 0; y < info->height; y++) {
            png_bytep row = rows[y];
            for (size_t x = 0; x < (size_t)info->width * channels; x++) result[i++] = row[x];
        }
        (void)count;
    }
    free(row_buffer);
    free(rows);
    png_destroy_read_struct(&png, &info_ptr, NULL);
    *samples = result;
    return 0;
}

void bp_png_free(void *pointer) { free(pointer); }

int bp_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                  int channels, uint8_t **out, size_t *out_length,
                  char *err, size_t err_length) {
    *out = NULL;
    *out_length = 0;
    png_image image;
    memset(&image, 0, sizeof(image));
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    switch (channels) {
    case 1: image.format = PNG_FORMAT_GRAY; break;
    case 3: image.format = PNG_FORMAT_RGB; break;
    case 4: image.format = PNG_FORMAT_RGBA; break;
    default:
        snprintf(err, err_length, "cannot encode %d channels", channels);
        return -1;
    }
    png_alloc_size_t size = 0;
    if (!png_image_write_get_memory_size(image, size, 0, pixels, 0, NULL)) {
        snprintf(err, err_length, "%s", image.message);
        png_image_free(&image);
        return -1;
    }
    uint8_t *buffer = malloc(size);
    if (!buffer) { snprintf(err, err_length, "out of memory"); return -1; }
    if (!png_image_write_to_memory(&image, buffer, &size, 0, pixels, 0, NULL)) {
        snprintf(err, err_length, "%s", image.message);
        free(buffer);
        png_image_free(&image);
        return -1;
    }
    *out = buffer;
    *out_length = size;
    return 0;
}
