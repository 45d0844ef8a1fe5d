import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { SecretNotFoundError, type SecretStore } from '../domain/secrets.ts';

/** Secrets Manager: `name` is the secret's name or ARN; the function's role may read only its own. */
export class AwsSecretsManagerStore implements SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  async read(name: string): Promise<string> {
    try {
      const answer = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
      if (answer.SecretString === undefined) {
        throw new SecretNotFoundError(`secret ${name} has no string value`);
      }
      return answer.SecretString;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) {
        throw new SecretNotFoundError(`secret ${name} does not exist`, { cause: error });
      }
      throw error;
    }
  }
}
