/*
 * The rules' journal for the local stack's Mosquitto (2.0, plugin API 5).
 *
 * Every PUBLISH a client sends on one of the journaled topic filters is appended to a
 * segment file before the broker goes on with it: Mosquitto 2.0 runs a plugin's message
 * callback after its ACL check and before it stores, queues or acknowledges the message
 * (src/handle_publish.c), so a message the broker acknowledged is in the journal. The local
 * rules emulator reads the journal instead of subscribing, as AWS IoT's rules engine takes
 * messages inside the broker; its checkpoint is its own.
 *
 * Written with one writev(2) per message and no fsync: a broker killed (even with kill -9)
 * leaves what it wrote in the kernel's page cache, which reaches the file. A machine that
 * loses power may lose the last seconds; that fault is not one the local stack emulates.
 * A message the journal could not take fails its callback: the broker then drops the client
 * without acknowledging it, and the client sends it again.
 *
 * Segment `<20-digit sequence>.seg` holds records whose sequence numbers count up from the
 * one in its name; the next segment is named after the last whole record of the one before,
 * so a reader knows each record's sequence without it being written. A segment is never
 * appended to after the broker stops writing it: a record torn by a crash is the end of its
 * segment, and its client, never acknowledged, sends it again. Record:
 *
 *   u32 length of the rest   u64 receive time (ms since the epoch)   u8 qos | retain << 2
 *   u16 client id length, client id   u16 topic length, topic   payload
 *
 * (integers little-endian).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define HEADER_BYTES 15
#define DEFAULT_SEGMENT_BYTES (64LL * 1024 * 1024)
/* No record is larger (the broker's max_packet_size is far less): a bigger length is damage. */
#define MAX_RECORD_BYTES (256U * 1024 * 1024)

static mosquitto_plugin_id_t *plugin_id;
static char *journal_dir;
static char **filters;
static int filter_count;
static long long segment_bytes = DEFAULT_SEGMENT_BYTES;

/* The segment being written, or -1 until the next message opens one. */
static int segment_fd = -1;
/* The sequence of the segment's first record, the records in it and its size. */
static uint64_t segment_start;
static uint64_t segment_records;
static off_t segment_size;
/* Where the next segment starts. */
static uint64_t next_sequence;

static void segment_path(char *out, size_t size, uint64_t start)
{
	snprintf(out, size, "%s/%020" PRIu64 ".seg", journal_dir, start);
}

/* The whole records at the start of a segment file (a torn last one is not counted). */
static uint64_t whole_records(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	uint64_t records = 0;
	off_t at = 0;
	unsigned char length[4];

	if(fd < 0) return 0;
	for(;;){
		struct stat st;
		uint32_t rest;
		if(pread(fd, length, 4, at) != 4) break;
		rest = (uint32_t)length[0] | (uint32_t)length[1] << 8 | (uint32_t)length[2] << 16 | (uint32_t)length[3] << 24;
		if(rest < HEADER_BYTES - 4 + 2 || rest > MAX_RECORD_BYTES) break;
		if(fstat(fd, &st) != 0 || at + 4 + (off_t)rest > st.st_size) break;
		at += 4 + (off_t)rest;
		records++;
	}
	close(fd);
	return records;
}

/* Continues the numbering after the newest segment a previous run left. */
static int find_next_sequence(void)
{
	DIR *dir = opendir(journal_dir);
	struct dirent *entry;
	bool found = false;
	uint64_t newest = 0;

	if(!dir){
		mosquitto_log_printf(MOSQ_LOG_ERR, "journal: cannot open %s: %s", journal_dir, strerror(errno));
		return MOSQ_ERR_INVAL;
	}
	while((entry = readdir(dir))){
		char *end;
		unsigned long long start;
		if(strlen(entry->d_name) != 24 || strcmp(entry->d_name + 20, ".seg") != 0) continue;
		start = strtoull(entry->d_name, &end, 10);
		if(end != entry->d_name + 20) continue;
		if(!found || start > newest){
			newest = start;
			found = true;
		}
	}
	closedir(dir);
	next_sequence = 0;
	if(found){
		char file[4096];
		segment_path(file, sizeof(file), newest);
		next_sequence = newest + whole_records(file);
	}
	return MOSQ_ERR_SUCCESS;
}

static void close_segment(void)
{
	if(segment_fd < 0) return;
	close(segment_fd);
	segment_fd = -1;
	next_sequence = segment_start + segment_records;
}

static bool open_segment(void)
{
	char file[4096];
	segment_start = next_sequence;
	segment_records = 0;
	segment_size = 0;
	segment_path(file, sizeof(file), segment_start);
	/*
	 * A segment of that name holds no whole record (a torn one at most: its client was never
	 * acknowledged). The reader notices the file was replaced.
	 */
	unlink(file);
	segment_fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if(segment_fd < 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "journal: cannot create %s: %s", file, strerror(errno));
		return false;
	}
	return true;
}

static bool journaled(const char *topic)
{
	for(int i = 0; i < filter_count; i++){
		bool match = false;
		if(mosquitto_topic_matches_sub(filters[i], topic, &match) == MOSQ_ERR_SUCCESS && match) return true;
	}
	return false;
}

static void put_u16(unsigned char *at, uint16_t value)
{
	at[0] = (unsigned char)value;
	at[1] = (unsigned char)(value >> 8);
}

static void put_u32(unsigned char *at, uint32_t value)
{
	for(int i = 0; i < 4; i++) at[i] = (unsigned char)(value >> (8 * i));
}

static void put_u64(unsigned char *at, uint64_t value)
{
	for(int i = 0; i < 8; i++) at[i] = (unsigned char)(value >> (8 * i));
}

/* Writes all of `iov`; on failure the segment is cut back to its last whole record. */
static bool append(struct iovec *iov, int count, size_t total)
{
	size_t written = 0;
	while(written < total && count > 0){
		ssize_t n = writev(segment_fd, iov, count);
		if(n < 0 && errno == EINTR) continue;
		if(n <= 0){
			mosquitto_log_printf(MOSQ_LOG_ERR, "journal: cannot write segment %020" PRIu64 ": %s", segment_start, n < 0 ? strerror(errno) : "nothing written");
			/* Cut back, and start a new segment next time: the reader ends this one at its last whole record. */
			if(ftruncate(segment_fd, segment_size) != 0){
				mosquitto_log_printf(MOSQ_LOG_ERR, "journal: cannot cut segment %020" PRIu64 " back: %s", segment_start, strerror(errno));
			}
			close_segment();
			return false;
		}
		written += (size_t)n;
		while(count > 0 && (size_t)n >= iov[0].iov_len){
			n -= (ssize_t)iov[0].iov_len;
			iov++;
			count--;
		}
		if(count > 0){
			iov[0].iov_base = (char *)iov[0].iov_base + n;
			iov[0].iov_len -= (size_t)n;
		}
	}
	segment_size += (off_t)total;
	segment_records++;
	return true;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	unsigned char header[HEADER_BYTES];
	unsigned char topic_length[2];
	const char *client_id = mosquitto_client_id(ed->client);
	size_t client_len = client_id ? strlen(client_id) : 0;
	size_t topic_len = strlen(ed->topic);
	struct iovec iov[5];
	struct timespec now;
	size_t total;
	(void)event;
	(void)userdata;

	if(!journaled(ed->topic)) return MOSQ_ERR_SUCCESS;
	if(client_len > 0xffff || topic_len > 0xffff) return MOSQ_ERR_INVAL;
	if(segment_fd < 0 && !open_segment()) return MOSQ_ERR_UNKNOWN;
	total = HEADER_BYTES + client_len + 2 + topic_len + ed->payloadlen;
	clock_gettime(CLOCK_REALTIME, &now);
	put_u32(header, (uint32_t)(total - 4));
	put_u64(header + 4, (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
	header[12] = (unsigned char)(ed->qos | (ed->retain ? 4 : 0));
	/* header[13..14] is the client id's length: one iovec fewer. */
	put_u16(header + 13, (uint16_t)client_len);
	put_u16(topic_length, (uint16_t)topic_len);
	iov[0] = (struct iovec){ header, HEADER_BYTES };
	iov[1] = (struct iovec){ (void *)client_id, client_len };
	iov[2] = (struct iovec){ topic_length, 2 };
	iov[3] = (struct iovec){ ed->topic, topic_len };
	iov[4] = (struct iovec){ ed->payload, ed->payloadlen };
	if(!append(iov, 5, total)) return MOSQ_ERR_UNKNOWN;
	if(segment_size >= segment_bytes) close_segment();
	return MOSQ_ERR_SUCCESS;
}

static int add_filters(const char *value)
{
	char *copy = strdup(value), *save = NULL;
	if(!copy) return MOSQ_ERR_NOMEM;
	for(char *filter = strtok_r(copy, " \t", &save); filter; filter = strtok_r(NULL, " \t", &save)){
		char **grown = realloc(filters, sizeof(*filters) * (size_t)(filter_count + 1));
		if(!grown){
			free(copy);
			return MOSQ_ERR_NOMEM;
		}
		filters = grown;
		filters[filter_count] = strdup(filter);
		if(!filters[filter_count]){
			free(copy);
			return MOSQ_ERR_NOMEM;
		}
		filter_count++;
	}
	free(copy);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count)
{
	int rc;
	(void)userdata;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "journal_dir") == 0){
			free(journal_dir);
			journal_dir = strdup(options[i].value);
		}else if(strcmp(options[i].key, "journal_topics") == 0){
			rc = add_filters(options[i].value);
			if(rc) return rc;
		}else if(strcmp(options[i].key, "journal_segment_bytes") == 0){
			segment_bytes = atoll(options[i].value);
			if(segment_bytes <= 0) segment_bytes = DEFAULT_SEGMENT_BYTES;
		}
	}
	if(!journal_dir || filter_count == 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "journal: plugin_opt_journal_dir and plugin_opt_journal_topics are required");
		return MOSQ_ERR_INVAL;
	}
	plugin_id = identifier;
	rc = find_next_sequence();
	if(rc) return rc;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	close_segment();
	for(int i = 0; i < filter_count; i++) free(filters[i]);
	free(filters);
	filters = NULL;
	filter_count = 0;
	free(journal_dir);
	journal_dir = NULL;
	return MOSQ_ERR_SUCCESS;
}
