// libjpeg reports errors by calling error_exit, which must not return; as in
// png_codec.c every setjmp/longjmp stays on the C side and Swift gets plain
// return codes and one-line messages.
#include "jpeg_codec.h"
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *err;
    size_t err_length;
    // The data ran out before an end-of-image marker (libjpeg then inserts one).
    int hit_end;
} error_state;

static const char *truncated_message = "JPEG data ends early: the file is truncated";

static void on_error_exit(j_common_ptr cinfo) {
    error_state *state = (error_state *)cinfo->err;
    if (state->hit_end) {
        // Whatever broke (no image, bad marker), running out of data came first.
        snprintf(state->err, state->err_length, "%s", truncated_message);
    } else {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        snprintf(state->err, state->err_length, "%s", text);
    }
    longjmp(state->jump, 1);
}

// Warnings that mean the pixels are wrong (data missing or corrupt) end the
// decode: a radiograph with a grey-filled bottom half must not be segmented as
// if it were whole. Harmless ones (extra bytes before a marker, an odd JFIF
// version, a bad ICC profile) and trace messages are ignored.
//
// Running out of data is not by itself an error: the entropy decoder reads
// ahead, so a file that lacks only its end marker warns too. What decides is
// whether bits were then missing (JWRN_HIT_MARKER: the decoder had to invent
// them) or, for multi-scan files, whether scans were missing (checked after
// jpeg_start_decompress has read them all).
static void on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    error_state *state = (error_state *)cinfo->err;
    int code = cinfo->err->msg_code;
    switch (code) {
    case JWRN_JPEG_EOF:
        state->hit_end = 1;
        cinfo->err->num_warnings++;
        return;
    case JWRN_HIT_MARKER:
        if (state->hit_end) {
            snprintf(state->err, state->err_length, "%s", truncated_message);
            longjmp(state->jump, 1);
        }
        /* fall through */
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION: {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        snprintf(state->err, state->err_length, "%s", text);
        longjmp(state->jump, 1);
    }
    default:
        cinfo->err->num_warnings++;
        return;
    }
}

static int check_start(const uint8_t *data, size_t length, char *err, size_t err_length) {
    if (length == 0) {
        snprintf(err, err_length, "not a JPEG: the file is empty");
        return -1;
    }
    if (length < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        snprintf(err, err_length, "not a JPEG: no start-of-image marker");
        return -1;
    }
    return 0;
}

// Fills info from the header and picks the output colour space; -1 with a
// message for what this decoder does not turn into gray or RGB.
static int describe(struct jpeg_decompress_struct *cinfo, bp_jpeg_info *info, char *err, size_t err_length) {
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->components = cinfo->num_components;
    info->color_space = (int)cinfo->jpeg_color_space;
    info->progressive = jpeg_has_multiple_scans(cinfo) ? 1 : 0;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        info->channels = 1;
        return 0;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_RGB;
        info->channels = 3;
        return 0;
    case JCS_CMYK:
    case JCS_YCCK:
        snprintf(err, err_length, "CMYK JPEG is not supported: save the radiograph as gray or RGB");
        return -1;
    default:
        snprintf(err, err_length, "JPEG colour space with %d components is not supported: save the radiograph as gray or RGB",
                 cinfo->num_components);
        return -1;
    }
}

// After the input ran out: whether a multi-scan file lacks scans. A progressive
// file is whole when every coefficient of every component has been refined to
// its last bit (coef_bits 0; -1 means never sent). A sequential file in several
// scans cannot be checked that way and counts as cut.
static int scans_missing(j_decompress_ptr cinfo) {
    if (!jpeg_has_multiple_scans(cinfo)) return 0;
    if (!cinfo->progressive_mode || cinfo->coef_bits == NULL) return 1;
    for (int c = 0; c < cinfo->num_components; c++) {
        for (int k = 0; k < DCTSIZE2; k++) {
            if (cinfo->coef_bits[c][k] != 0) return 1;
        }
    }
    return 0;
}

// Points libjpeg's error handling at our state: messages into err, and a
// longjmp back to the caller's setjmp (which must stay in the caller's frame).
static void route_errors(struct jpeg_decompress_struct *cinfo, error_state *state, char *err, size_t err_length) {
    memset(cinfo, 0, sizeof(*cinfo));
    cinfo->err = jpeg_std_error(&state->base);
    state->base.error_exit = on_error_exit;
    state->base.emit_message = on_message;
    state->err = err;
    state->err_length = err_length;
    state->hit_end = 0;
}

int bp_jpeg_read_header(const uint8_t *data, size_t length, bp_jpeg_info *info,
                        char *err, size_t err_length) {
    if (check_start(data, length, err, err_length) != 0) return -1;
    struct jpeg_decompress_struct cinfo;
    error_state state;
    route_errors(&cinfo, &state, err, err_length);
    if (setjmp(state.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    int rc = describe(&cinfo, info, err, err_length);
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

int bp_jpeg_decode(const uint8_t *data, size_t length, uint32_t max_width,
                   uint32_t max_height, bp_jpeg_info *info, uint16_t **samples,
                   char *err, size_t err_length) {
    *samples = NULL;
    if (check_start(data, length, err, err_length) != 0) return -1;
    struct jpeg_decompress_struct cinfo;
    error_state state;
    route_errors(&cinfo, &state, err, err_length);
    // volatile: assigned after setjmp and freed after a longjmp.
    JSAMPLE *volatile row = NULL;
    uint16_t *volatile result = NULL;
    if (setjmp(state.jump)) {
        free(row);
        free(result);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    if (describe(&cinfo, info, err, err_length) != 0) longjmp(state.jump, 1);
    if (info->width == 0 || info->height == 0) {
        snprintf(err, err_length, "image has no pixels (%ux%u)", info->width, info->height);
        longjmp(state.jump, 1);
    }
    if (info->width > max_width || info->height > max_height) {
        snprintf(err, err_length, "image is %ux%u, over the limit of %ux%u",
                 info->width, info->height, max_width, max_height);
        longjmp(state.jump, 1);
    }
    // libjpeg's defaults (islow IDCT, fancy upsampling) are what OpenCV uses too.
    jpeg_start_decompress(&cinfo);  // reads every scan of a multi-scan file
    if (state.hit_end && scans_missing(&cinfo)) {
        snprintf(err, err_length, "%s", truncated_message);
        longjmp(state.jump, 1);
    }
    size_t row_samples = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    size_t pixel_count = (size_t)cinfo.output_width * (size_t)cinfo.output_height;
    row = malloc(row_samples);
    result = malloc(sizeof(uint16_t) * pixel_count * (size_t)cinfo.output_components);
    if (!row || !result) {
        snprintf(err, err_length, "out of memory for %ux%u pixels", info->width, info->height);
        longjmp(state.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1] = {row};
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            snprintf(err, err_length, "JPEG data ends early: the file is truncated");
            longjmp(state.jump, 1);
        }
        uint16_t *out = result + y * row_samples;
        for (size_t i = 0; i < row_samples; i++) out[i] = row[i];
    }
    jpeg_finish_decompress(&cinfo);
    info->channels = cinfo.output_components;
    free(row);
    jpeg_destroy_decompress(&cinfo);
    *samples = result;
    return 0;
}

void bp_jpeg_free(void *pointer) { free(pointer); }
