import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseTrainedModel, type TrainedModel } from '../../ml/domain/model.ts';
import type { ModelParser, ModelStore } from '../domain/ports.ts';

const SAFE_KEY = /^[a-zA-Z0-9/_:.-]{1,512}$/;

function checkKey(key: string): string {
  if (!SAFE_KEY.test(key) || key.includes('..')) throw new Error(`invalid model key ${key}`);
  return key;
}

export class FileModelStore<M = TrainedModel> implements ModelStore<M> {
  constructor(
    private readonly dir: string,
    private readonly parse: ModelParser<M> = parseTrainedModel as ModelParser<M>,
  ) {}

  async save(key: string, model: M): Promise<void> {
    const file = path.join(this.dir, `${checkKey(key)}.json`);
    await mkdir(path.dirname(file), { recursive: true });
    // Written aside and renamed, so a reader never sees half a model.
    await writeFile(`${file}.tmp`, JSON.stringify(model));
    await rename(`${file}.tmp`, file);
  }

  async load(key: string): Promise<M | null> {
    try {
      return this.parse(
        JSON.parse(await readFile(path.join(this.dir, `${checkKey(key)}.json`), 'utf8')),
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}

export class S3ModelStore<M = TrainedModel> implements ModelStore<M> {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly parse: ModelParser<M> = parseTrainedModel as ModelParser<M>,
  ) {}

  async save(key: string, model: M): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: `${checkKey(key)}.json`,
        Body: JSON.stringify(model),
        ContentType: 'application/json',
      }),
    );
  }

  async load(key: string): Promise<M | null> {
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: `${checkKey(key)}.json` }),
      );
      return this.parse(JSON.parse((await object.Body?.transformToString()) ?? 'null'));
    } catch (error) {
      if (error instanceof NoSuchKey) return null;
      throw error;
    }
  }
}
